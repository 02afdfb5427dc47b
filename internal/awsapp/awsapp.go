// Package awsapp wires longrun on AWS: it reads the configuration that
// template.yaml puts in each function's environment, builds the SDK clients
// once per process (outside any handler, so warm invocations reuse their
// connections), puts the adapters (internal/dynamostore, internal/sfnengine,
// internal/sqsqueue) behind the domain's ports, and hands out the handlers
// every functions/*/main.go starts and the Poller `longrun worker` runs.
//
// A handler constructor checks, before the first invocation, that the
// variables its function needs are set, so a mis-deployed function fails at
// init with a message naming the variable rather than at its first request.
package awsapp

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/delivery"
	"github.com/longrun/longrun/internal/dynamostore"
	"github.com/longrun/longrun/internal/sfnengine"
	"github.com/longrun/longrun/jobs/ramen"
)

// The environment variables template.yaml sets. Endpoints, region and
// credentials come from the SDK's own variables (AWS_REGION,
// AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, ...), which is how the tests
// and `sam local invoke` point the functions at local emulators.
const (
	EnvTableName              = "LONGRUN_TABLE_NAME"
	EnvStateMachineARN        = "LONGRUN_STATE_MACHINE_ARN"
	EnvDeliverStateMachineARN = "LONGRUN_DELIVER_STATE_MACHINE_ARN"
	EnvJobsQueueURL           = "LONGRUN_JOBS_QUEUE_URL"
	EnvLongJobsQueueURL       = "LONGRUN_LONG_JOBS_QUEUE_URL"
	EnvMaxQueueWaitSeconds    = "LONGRUN_MAX_QUEUE_WAIT_SECONDS"
	EnvWorkerTimeoutSeconds   = "LONGRUN_WORKER_TIMEOUT_SECONDS"
	EnvJobTimeoutSeconds      = "LONGRUN_JOB_TIMEOUT_SECONDS"
	EnvJobHeartbeatSeconds    = "LONGRUN_JOB_HEARTBEAT_SECONDS"
	EnvWebhookSchedule        = "LONGRUN_WEBHOOK_SCHEDULE"
	EnvWebhookRequireHTTPS    = "LONGRUN_WEBHOOK_REQUIRE_HTTPS"
	EnvRamenTimerSeconds      = ramen.EnvTimerSeconds
	EnvAPIURL                 = "LONGRUN_API_URL"
	EnvRetentionDays          = "LONGRUN_RETENTION_DAYS"
)

// Config is the deployment's configuration. Zero values mean "not set";
// each handler constructor says which ones it needs.
type Config struct {
	TableName              string
	StateMachineARN        string
	DeliverStateMachineARN string
	JobsQueueURL           string
	// LongJobsQueueURL is the queue of the kinds whose Timeout is over what
	// the Lambda worker can run; only `longrun worker` reads it (docs/sam.md,
	// "Long jobs"). Empty: every kind goes to JobsQueueURL.
	LongJobsQueueURL string
	// Limits bound every execution's job (template Parameters
	// JobTimeoutSeconds and JobHeartbeatSeconds).
	Limits longrun.Limits
	// QueueWait is how long a task may wait in its queue before the Work
	// state's backstop ends it (template Parameter MaxQueueWaitSeconds); 0
	// means longrun.DefaultQueueWait.
	QueueWait time.Duration
	// WorkerTimeout is the Lambda worker's timeout (template Parameter
	// WorkerTimeoutSeconds); 0 means Lambda's most, 15 minutes.
	WorkerTimeout time.Duration
	// WebhookSchedule is the delays between webhook attempts; nil means
	// delivery.DefaultDelays.
	WebhookSchedule []time.Duration
	// WebhookPolicy says where webhooks may go. From the environment only
	// RequireHTTPS is read; AllowLoopback is for tests, never for AWS.
	WebhookPolicy delivery.Policy
	// RamenTimerSeconds is the example job's default TIMER.
	RamenTimerSeconds float64
	// APIURL is the HTTP API's base URL as clients call it (template
	// Parameter PublicApiUrl): webhooks whose output is too large to send
	// inline point there instead. Empty: they carry the path alone.
	APIURL string
	// Retention is how long a finished execution's record is kept before
	// the table's TTL deletes it (template Parameter ExecutionRetentionDays);
	// 0 keeps it for ever.
	Retention time.Duration
}

// ConfigFromEnv reads Config from the variables template.yaml sets. A
// variable that is set but malformed is an error; one that is absent stays
// zero (RequireHTTPS defaults to true: plain-http webhooks must be asked for).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		TableName:              getenv(EnvTableName),
		StateMachineARN:        getenv(EnvStateMachineARN),
		DeliverStateMachineARN: getenv(EnvDeliverStateMachineARN),
		JobsQueueURL:           getenv(EnvJobsQueueURL),
		LongJobsQueueURL:       getenv(EnvLongJobsQueueURL),
		APIURL:                 strings.TrimRight(getenv(EnvAPIURL), "/"),
		WebhookPolicy:          delivery.Policy{RequireHTTPS: true},
	}
	var err error
	if c.Limits.TimeoutSeconds, err = positiveInt(getenv, EnvJobTimeoutSeconds); err != nil {
		return Config{}, err
	}
	if c.Limits.HeartbeatSeconds, err = positiveInt(getenv, EnvJobHeartbeatSeconds); err != nil {
		return Config{}, err
	}
	wait, err := positiveInt(getenv, EnvMaxQueueWaitSeconds)
	if err != nil {
		return Config{}, err
	}
	c.QueueWait = time.Duration(wait) * time.Second
	worker, err := positiveInt(getenv, EnvWorkerTimeoutSeconds)
	if err != nil {
		return Config{}, err
	}
	c.WorkerTimeout = time.Duration(worker) * time.Second
	if s := getenv(EnvWebhookSchedule); s != "" {
		if c.WebhookSchedule, err = delivery.ParseSchedule(s); err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvWebhookSchedule, err)
		}
	}
	if s := getenv(EnvWebhookRequireHTTPS); s != "" {
		if c.WebhookPolicy.RequireHTTPS, err = strconv.ParseBool(s); err != nil {
			return Config{}, fmt.Errorf("%s=%q: want true or false", EnvWebhookRequireHTTPS, s)
		}
	}
	if s := getenv(EnvRetentionDays); s != "" {
		days, err := strconv.Atoi(s)
		if err != nil || days <= 0 {
			return Config{}, fmt.Errorf("%s=%q: want a positive whole number of days", EnvRetentionDays, s)
		}
		c.Retention = time.Duration(days) * 24 * time.Hour
	}
	if c.RamenTimerSeconds, err = ramen.SecondsFromEnv(getenv); err != nil {
		return Config{}, err
	}
	return c, nil
}

func positiveInt(getenv func(string) string, name string) (int, error) {
	s := getenv(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive whole number of seconds", name, s)
	}
	return n, nil
}

// require reports the first of the named settings that is empty.
func (c Config) require(names ...string) error {
	var missing []string
	for _, name := range names {
		var set bool
		switch name {
		case EnvTableName:
			set = c.TableName != ""
		case EnvStateMachineARN:
			set = c.StateMachineARN != ""
		case EnvDeliverStateMachineARN:
			set = c.DeliverStateMachineARN != ""
		case EnvJobsQueueURL:
			set = c.JobsQueueURL != ""
		case EnvLongJobsQueueURL:
			set = c.LongJobsQueueURL != ""
		case EnvJobTimeoutSeconds:
			set = c.Limits.TimeoutSeconds > 0
		case EnvJobHeartbeatSeconds:
			set = c.Limits.HeartbeatSeconds > 0
		default:
			panic("awsapp: require of unknown setting " + name)
		}
		if !set {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing configuration: %s (template.yaml sets them on AWS)", strings.Join(missing, ", "))
	}
	return nil
}

// App is the SDK clients and adapters of one process, built once.
type App struct {
	Config   Config
	DynamoDB *dynamodb.Client
	SFN      *sfn.Client
	SQS      *sqs.Client
	Store    *dynamostore.Store
	Engine   *sfnengine.Engine
	Logger   *slog.Logger
	// Clock is "now" for notify and the settle sweep; nil means
	// longrun.SystemClock. Tests inject one to move past grace periods
	// without waiting.
	Clock longrun.Clock
	// Jobs are the kinds of job start accepts and the worker runs: the
	// ramen timer unless replaced before a handler is made
	// (awslambda.Main does, with the user's registry).
	Jobs *longrun.Registry
}

// New builds the clients and adapters from an aws.Config. Tests pass one
// pointed at an emulator, with middleware that records each call.
func New(cfg Config, awsCfg aws.Config, logger *slog.Logger) *App {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &App{
		Config:   cfg,
		DynamoDB: dynamodb.NewFromConfig(awsCfg),
		SFN:      sfn.NewFromConfig(awsCfg),
		SQS:      sqs.NewFromConfig(awsCfg),
		Logger:   logger,
		Jobs:     ramenRegistry(cfg.RamenTimerSeconds),
	}
	a.Store = dynamostore.New(a.DynamoDB, dynamostore.Config{TableName: cfg.TableName, Retention: cfg.Retention})
	a.Engine = sfnengine.New(a.SFN, sfnengine.Config{StateMachineARN: cfg.StateMachineARN, DeliverStateMachineARN: cfg.DeliverStateMachineARN})
	return a
}

// FromEnv is what a Lambda main calls: the Config from getenv and the
// SDK's default configuration chain (region, credentials, endpoints).
func FromEnv(ctx context.Context, getenv func(string) string, logger *slog.Logger) (*App, error) {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return New(cfg, awsCfg, logger), nil
}

func ramenRegistry(seconds float64) *longrun.Registry {
	r := longrun.NewRegistry()
	ramen.Register(r, seconds)
	return r
}
