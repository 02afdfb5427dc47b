package awsapp_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awsapp"
	"github.com/longrun/longrun/internal/delivery"
	"github.com/longrun/longrun/jobs/ramen"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		vars    map[string]string
		want    awsapp.Config
		wantErr string
	}{
		{
			name: "nothing set: zero values, https required",
			vars: nil,
			want: awsapp.Config{WebhookPolicy: delivery.Policy{RequireHTTPS: true}, RamenTimerSeconds: ramen.DefaultSeconds},
		},
		{
			name: "everything the template sets",
			vars: map[string]string{
				awsapp.EnvTableName:              "t",
				awsapp.EnvStateMachineARN:        "arn:sm",
				awsapp.EnvDeliverStateMachineARN: "arn:deliver",
				awsapp.EnvJobsQueueURL:           "http://q",
				awsapp.EnvJobTimeoutSeconds:      "3600",
				awsapp.EnvJobHeartbeatSeconds:    "60",
				awsapp.EnvWebhookSchedule:        "5s,5m,2h",
				awsapp.EnvWebhookRequireHTTPS:    "false",
				awsapp.EnvRamenTimerSeconds:      "2.5",
			},
			want: awsapp.Config{
				TableName: "t", StateMachineARN: "arn:sm", DeliverStateMachineARN: "arn:deliver", JobsQueueURL: "http://q",
				Limits:            longrun.Limits{TimeoutSeconds: 3600, HeartbeatSeconds: 60},
				WebhookSchedule:   []time.Duration{5 * time.Second, 5 * time.Minute, 2 * time.Hour},
				WebhookPolicy:     delivery.Policy{RequireHTTPS: false},
				RamenTimerSeconds: 2.5,
			},
		},
		{
			name: "routing and the backstop: the start function's",
			vars: map[string]string{
				awsapp.EnvJobsQueueURL: "http://q", awsapp.EnvLongJobsQueueURL: "http://long",
				awsapp.EnvWorkerTimeoutSeconds: "600", awsapp.EnvMaxQueueWaitSeconds: "7200",
			},
			want: awsapp.Config{
				JobsQueueURL: "http://q", LongJobsQueueURL: "http://long", WorkerTimeout: 10 * time.Minute, QueueWait: 2 * time.Hour,
				WebhookPolicy: delivery.Policy{RequireHTTPS: true}, RamenTimerSeconds: ramen.DefaultSeconds,
			},
		},
		{name: "queue wait not a number", vars: map[string]string{awsapp.EnvMaxQueueWaitSeconds: "1d"}, wantErr: awsapp.EnvMaxQueueWaitSeconds},
		{name: "worker timeout zero", vars: map[string]string{awsapp.EnvWorkerTimeoutSeconds: "0"}, wantErr: awsapp.EnvWorkerTimeoutSeconds},
		{name: "timeout not a number", vars: map[string]string{awsapp.EnvJobTimeoutSeconds: "1h"}, wantErr: awsapp.EnvJobTimeoutSeconds},
		{name: "heartbeat zero", vars: map[string]string{awsapp.EnvJobHeartbeatSeconds: "0"}, wantErr: awsapp.EnvJobHeartbeatSeconds},
		{name: "bad schedule", vars: map[string]string{awsapp.EnvWebhookSchedule: "soon"}, wantErr: awsapp.EnvWebhookSchedule},
		{name: "bad https flag", vars: map[string]string{awsapp.EnvWebhookRequireHTTPS: "yes please"}, wantErr: awsapp.EnvWebhookRequireHTTPS},
		{name: "negative ramen timer", vars: map[string]string{awsapp.EnvRamenTimerSeconds: "-1"}, wantErr: awsapp.EnvRamenTimerSeconds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := awsapp.ConfigFromEnv(env(tt.vars))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ConfigFromEnv error = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfigFromEnv: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ConfigFromEnv =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func setup(t *testing.T, cfg awsapp.Config) *awsapp.App {
	t.Helper()
	// No endpoint is ever called: these tests only build handlers.
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), BaseEndpoint: aws.String("http://127.0.0.1:1")}
	return awsapp.New(cfg, awsCfg, nil)
}

// Each handler refuses to start without the settings its function needs,
// naming the missing variables.
func TestHandlersRequireTheirConfiguration(t *testing.T) {
	t.Parallel()
	full := awsapp.Config{
		TableName: "t", StateMachineARN: "arn:sm", DeliverStateMachineARN: "arn:deliver", JobsQueueURL: "http://q",
		Limits: longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 10},
	}
	build := map[string]func(*awsapp.App) error{
		"authorizer": func(a *awsapp.App) error { _, err := a.Authorizer(); return err },
		"start":      func(a *awsapp.App) error { _, err := a.Start(); return err },
		"describe":   func(a *awsapp.App) error { _, err := a.Describe(); return err },
		"stop":       func(a *awsapp.App) error { _, err := a.Stop(); return err },
		"redeliver":  func(a *awsapp.App) error { _, err := a.Redeliver(); return err },
		"worker":     func(a *awsapp.App) error { _, err := a.Worker(); return err },
		"notify":     func(a *awsapp.App) error { _, err := a.Notify(); return err },
		"poller":     func(a *awsapp.App) error { _, err := a.Poller(2, 0); return err },
	}
	needs := map[string][]string{
		"authorizer": {awsapp.EnvTableName},
		"start":      {awsapp.EnvTableName, awsapp.EnvStateMachineARN, awsapp.EnvJobTimeoutSeconds, awsapp.EnvJobHeartbeatSeconds},
		"describe":   {awsapp.EnvTableName},
		"stop":       {awsapp.EnvTableName},
		"redeliver":  {awsapp.EnvTableName, awsapp.EnvDeliverStateMachineARN},
		"worker":     {awsapp.EnvTableName, awsapp.EnvJobsQueueURL},
		"notify":     {awsapp.EnvTableName, awsapp.EnvDeliverStateMachineARN},
		"poller":     {awsapp.EnvTableName, awsapp.EnvJobsQueueURL},
	}
	for name, fn := range build {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := fn(setup(t, full)); err != nil {
				t.Fatalf("with every setting: %v", err)
			}
			err := fn(setup(t, awsapp.Config{}))
			if err == nil {
				t.Fatal("built without any setting")
			}
			for _, v := range needs[name] {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("error %q does not name %s", err, v)
				}
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level     string
		wantDebug bool
		wantInfo  bool
	}{
		{"", false, true},
		{"DEBUG", true, true},
		{"warn", false, false},
	}
	for _, tt := range tests {
		t.Run("level "+tt.level, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := awsapp.NewLogger(&buf, "worker", env(map[string]string{"AWS_LAMBDA_LOG_LEVEL": tt.level}))
			log.Debug("d")
			log.Info("i", "execution_id", "x")
			var lines []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if l == "" {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("not JSON: %q", l)
				}
				if m["function"] != "worker" {
					t.Errorf("record without function=worker: %v", m)
				}
				lines = append(lines, m)
			}
			var gotDebug, gotInfo bool
			for _, m := range lines {
				gotDebug = gotDebug || m["msg"] == "d"
				gotInfo = gotInfo || m["msg"] == "i"
			}
			if gotDebug != tt.wantDebug || gotInfo != tt.wantInfo {
				t.Errorf("debug logged %v (want %v), info logged %v (want %v): %s", gotDebug, tt.wantDebug, gotInfo, tt.wantInfo, buf.String())
			}
		})
	}
}
