package awslambda_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/awslambda"
	"github.com/longrun/longrun/internal/awsapp"
)

func nop(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}

// deployed is what template.yaml gives every function, all at once.
func deployed(function string) func(string) string {
	env := map[string]string{
		awslambda.EnvFunction:               function,
		"LONGRUN_TABLE_NAME":                "longrun",
		"LONGRUN_STATE_MACHINE_ARN":         "arn:aws:states:us-east-1:123456789012:stateMachine:longrun",
		"LONGRUN_DELIVER_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:longrun-deliver",
		"LONGRUN_JOB_TIMEOUT_SECONDS":       "3600",
		"LONGRUN_JOB_HEARTBEAT_SECONDS":     "60",
		"LONGRUN_JOBS_QUEUE_URL":            "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
	}
	return func(k string) string { return env[k] }
}

func registry(opts longrun.JobOptions) *longrun.Registry {
	r := longrun.NewRegistry()
	r.Handle("export", nop, opts)
	return r
}

func TestHandlerServesEveryFunction(t *testing.T) {
	t.Parallel()
	for _, fn := range awslambda.Functions() {
		t.Run(fn, func(t *testing.T) {
			t.Parallel()
			h, err := awslambda.Handler(context.Background(), fn, registry(longrun.JobOptions{}), deployed(fn), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("Handler(%s): %v", fn, err)
			}
			var ok bool
			switch fn {
			case awslambda.Start, awslambda.Describe, awslambda.Stop, awslambda.Redeliver:
				_, ok = h.(awsapp.APIHandler)
			case awslambda.Authorizer:
				_, ok = h.(awsapp.AuthorizerHandler)
			case awslambda.Worker:
				_, ok = h.(awsapp.WorkerHandler)
			case awslambda.Notify:
				_, ok = h.(awsapp.NotifyHandler)
			case awslambda.Settle:
				_, ok = h.(awsapp.SettleHandler)
			}
			if !ok {
				t.Fatalf("Handler(%s) is a %T", fn, h)
			}
		})
	}
}

func TestHandlerInitErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, function string
		reg            *longrun.Registry
		getenv         func(string) string
		want           string
	}{
		{"no LONGRUN_FUNCTION", "", registry(longrun.JobOptions{}), deployed(""), `LONGRUN_FUNCTION="" is not a longrun function; want one of start, describe`},
		{"unknown function", "transcoder", registry(longrun.JobOptions{}), deployed("transcoder"), `"transcoder" is not a longrun function`},
		{"nil registry", awslambda.Worker, nil, deployed("worker"), "no job kinds"},
		{"empty registry", awslambda.Worker, longrun.NewRegistry(), deployed("worker"), "no job kinds"},
		{"missing configuration", awslambda.Start, registry(longrun.JobOptions{}), func(k string) string {
			if k == "LONGRUN_STATE_MACHINE_ARN" {
				return ""
			}
			return deployed("start")(k)
		}, "LONGRUN_STATE_MACHINE_ARN"},
		{"a kind over SQS's 12 h", awslambda.Start, registry(longrun.JobOptions{Timeout: 13 * time.Hour}), deployed("start"), `job "export": Timeout 13h0m0s cannot be honoured`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := awslambda.Handler(context.Background(), tt.function, tt.reg, tt.getenv, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Handler = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// A kind longer than a Lambda function may run still gets a worker (long
// kinds run on `longrun worker`), but its init says so in the log.
func TestWorkerWarnsOfKindsTooLongForLambda(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := awslambda.Handler(context.Background(), awslambda.Worker, registry(longrun.JobOptions{Timeout: time.Hour}), deployed("worker"), log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `job \"export\": Timeout 1h0m0s cannot be honoured: it is over 15m0s`) {
		t.Fatalf("log %q, want the kind named", logs.String())
	}
}
