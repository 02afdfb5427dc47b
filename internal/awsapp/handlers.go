package awsapp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/api"
	"github.com/longrun/longrun/internal/auth"
	"github.com/longrun/longrun/internal/delivery"
	"github.com/longrun/longrun/internal/notify"
	"github.com/longrun/longrun/internal/settle"
	"github.com/longrun/longrun/internal/sqsqueue"
	"github.com/longrun/longrun/internal/worker"
)

// APIHandler serves API Gateway HTTP API events (payload format 2.0).
type APIHandler = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// AuthorizerHandler answers API Gateway's Lambda authorizer requests.
type AuthorizerHandler = func(context.Context, events.APIGatewayV2CustomAuthorizerV2Request) (events.APIGatewayV2CustomAuthorizerSimpleResponse, error)

// WorkerHandler serves SQS batches of task messages.
type WorkerHandler = func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// NotifyHandler serves the state machines' notify requests and EventBridge
// status-change events.
type NotifyHandler = func(context.Context, json.RawMessage) (json.RawMessage, error)

// Authorizer is the handler of AuthorizerFunction.
func (a *App) Authorizer() (AuthorizerHandler, error) {
	if err := a.Config.require(EnvTableName); err != nil {
		return nil, fmt.Errorf("authorizer: %w", err)
	}
	az := &auth.Authorizer{Tenants: a.Store, Logger: a.Logger}
	return az.Handle, nil
}

// Start is the handler of StartFunction (POST /start-execution). It checks
// starts against App.Jobs, so it is built with the user's registry; a kind
// whose Timeout the deployment cannot honour fails its init, naming it.
func (a *App) Start() (APIHandler, error) {
	if err := a.checkTimeouts(longrun.MaxJobTimeout, longrun.MaxJobTimeoutReason); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	return a.api("start", EnvTableName, EnvStateMachineARN, EnvJobTimeoutSeconds, EnvJobHeartbeatSeconds)
}

// checkTimeouts is Registry.CheckTimeouts of the app's job kinds.
func (a *App) checkTimeouts(longest time.Duration, why string) error {
	if a.Jobs == nil {
		return fmt.Errorf("no job kinds: App.Jobs is nil")
	}
	if err := a.Jobs.CheckTimeouts(longest, why); err != nil {
		return fmt.Errorf("job kinds: %w", err)
	}
	return nil
}

// Describe is the handler of DescribeFunction (describe and list).
func (a *App) Describe() (APIHandler, error) { return a.api("describe", EnvTableName) }

// Stop is the handler of StopFunction; it stops by the ARN in the record.
func (a *App) Stop() (APIHandler, error) { return a.api("stop", EnvTableName) }

// Redeliver is the handler of RedeliverFunction.
func (a *App) Redeliver() (APIHandler, error) {
	return a.api("redeliver", EnvTableName, EnvDeliverStateMachineARN)
}

// api is the whole HTTP API behind the authorizer: each API function serves
// only the routes template.yaml gives it, so one handler serves them all and
// the function's role, not its code, bounds what it can reach.
func (a *App) api(fn string, required ...string) (APIHandler, error) {
	if err := a.Config.require(required...); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	policy, plan := a.Config.WebhookPolicy, a.plan()
	h := api.NewServer(api.Config{
		Executions:       a.Store,
		Tenants:          a.Store,
		Orchestrator:     a.Engine,
		Authenticate:     api.GatewayAuth,
		CheckCallbackURL: func(u string) error { return delivery.CheckURL(u, policy) },
		Limits:           plan.Limits,
		QueueWait:        plan.QueueWait,
		Queues:           plan.Queues,
		Jobs:             plan.Jobs,
		Logger:           a.Logger,
	})
	return api.LambdaHandler(h), nil
}

// plan is how this deployment builds an execution's state input: the start
// function and SettleFunction build the same one.
func (a *App) plan() api.Plan {
	return api.Plan{Limits: a.Config.Limits, Jobs: a.Jobs, QueueWait: a.Config.QueueWait,
		Queues: api.Routing{Jobs: a.Config.JobsQueueURL, Long: a.Config.LongJobsQueueURL, LongerThan: a.lambdaLongest()}}
}

// workerTimeout is the Lambda worker's timeout: WorkerTimeoutSeconds, or
// Lambda's most when it is not given.
func (a *App) workerTimeout() time.Duration {
	t := a.Config.WorkerTimeout
	if t <= 0 || t > longrun.MaxLambdaJobTimeout {
		t = longrun.MaxLambdaJobTimeout
	}
	return t
}

// lambdaLongest is the longest a job can run on the Lambda worker: its
// timeout less the margin it keeps to report a job that runs out of time.
// A kind with a longer Timeout is routed to the long-jobs queue.
func (a *App) lambdaLongest() time.Duration { return a.workerTimeout() - worker.LambdaMargin }

// Worker is the handler of WorkerFunction: the job of each task message's
// kind (App.Jobs), with the message held as the job's lease of
// JobHeartbeatSeconds (renewed at a third of it, with a heartbeat that learns
// whether the task is gone), so a dead invocation's job is delivered again
// within a lease. A kind whose Timeout is over what this function can run
// never comes here: the start function of the same template routes it to
// the long-jobs queue, which only `longrun worker` reads. Such kinds are
// logged at init as a warning that names them and says so (were one to
// come here anyway, it would end Job.OutOfTime).
func (a *App) Worker() (WorkerHandler, error) {
	if err := a.Config.require(EnvTableName, EnvJobsQueueURL); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	// Named against the function's timeout (a kind within LambdaMargin of it
	// is routed away too, without a line here).
	if err := a.checkTimeouts(a.workerTimeout(), longrun.MaxLambdaJobTimeoutReason); err != nil {
		a.Logger.Warn("job kinds this Lambda worker cannot finish: the start function routes them to the LongJobsQueue, which only `longrun worker` reads; run it (with the WorkerPollerPolicyArn output) or they wait there",
			"err", err)
	}
	return worker.LeasedSQSHandler(a.processor(), sqsqueue.New(a.SQS, a.Config.JobsQueueURL), a.lease()), nil
}

// lease is how long a worker holds a task message without renewing it:
// JobHeartbeatSeconds (docs/state-machine.md, "Liveness").
func (a *App) lease() time.Duration {
	return time.Duration(a.Config.Limits.HeartbeatSeconds) * time.Second
}

func (a *App) processor() *worker.Processor {
	var heartbeat time.Duration
	if h := a.Config.Limits.HeartbeatSeconds; h > 0 {
		heartbeat = time.Duration(h) * time.Second / 3
	}
	return worker.NewProcessor(worker.Config{
		Tasks:             a.Engine,
		Executions:        a.Store,
		Jobs:              a.Jobs,
		HeartbeatInterval: heartbeat,
		Logger:            a.Logger,
	})
}

// Poller is `longrun worker`: the same processor on a long-running SQS
// poller, for jobs longer than Lambda's 15 minutes. It reads the jobs queue
// and the long-jobs queue, whichever are configured (clear one in Config to
// read only the other), with concurrency jobs at once from each.
// drain is how long running jobs may finish after SIGTERM (0: the
// worker's default).
func (a *App) Poller(concurrency int, drain time.Duration) (*worker.Poller, error) {
	var queues []longrun.Queue
	for _, url := range []string{a.Config.JobsQueueURL, a.Config.LongJobsQueueURL} {
		if url != "" {
			queues = append(queues, sqsqueue.New(a.SQS, url))
		}
	}
	required := []string{EnvTableName}
	if len(queues) == 0 {
		// One of the two will do.
		required = append(required, EnvJobsQueueURL, EnvLongJobsQueueURL)
	}
	if err := a.Config.require(required...); err != nil {
		return nil, fmt.Errorf("worker poller: %w (one queue URL at least: the stack's JobsQueueUrl and LongJobsQueueUrl outputs)", err)
	}
	if err := a.checkTimeouts(longrun.MaxJobTimeout, longrun.MaxJobTimeoutReason); err != nil {
		return nil, fmt.Errorf("worker poller: %w", err)
	}
	return worker.NewPoller(worker.PollerConfig{
		Queue:        queues[0],
		Queues:       queues[1:],
		Processor:    a.processor(),
		Visibility:   a.lease(),
		Concurrency:  concurrency,
		DrainTimeout: drain,
		Logger:       a.Logger,
	}), nil
}

// Notify is the handler of NotifyFunction.
func (a *App) Notify() (NotifyHandler, error) {
	if err := a.Config.require(EnvTableName, EnvDeliverStateMachineARN); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return a.notifier().Handle, nil
}

func (a *App) notifier() *notify.Notifier {
	return notify.New(notify.Config{
		Store:     a.Store,
		Tenants:   a.Store,
		Redeliver: a.Engine.Redeliver,
		Sender:    delivery.NewSender(delivery.Config{Policy: a.Config.WebhookPolicy}),
		Schedule:  delivery.Schedule{Delays: a.Config.WebhookSchedule},
		Clock:     a.Clock,
		Logger:    a.Logger,
		// Without the public URL (a deployment parameter), the path alone:
		// receivers resolve it against the API they call.
		DescribeURL: func(id string) string { return a.Config.APIURL + "/executions/" + id },
	})
}

// SettleHandler serves the schedule's invocations of SettleFunction.
type SettleHandler = func(context.Context, json.RawMessage) (settle.Result, error)

// Settle is the handler of SettleFunction, invoked every minute by its
// schedule (the event is not read): it settles records whose start was cut
// short between the record and StartExecution (internal/settle), starting
// them with the input the start function would have given, so it is built
// with the same registry and limits as Start; a start that can no longer
// run is failed and its webhook sent as notify sends one.
func (a *App) Settle() (SettleHandler, error) {
	if err := a.Config.require(EnvTableName, EnvStateMachineARN, EnvDeliverStateMachineARN, EnvJobTimeoutSeconds, EnvJobHeartbeatSeconds, EnvJobsQueueURL); err != nil {
		return nil, fmt.Errorf("settle: %w", err)
	}
	if err := a.checkTimeouts(longrun.MaxJobTimeout, longrun.MaxJobTimeoutReason); err != nil {
		return nil, fmt.Errorf("settle: %w", err)
	}
	n := a.notifier()
	sw := settle.New(settle.Config{
		Store:        a.Store,
		Orchestrator: a.Engine,
		StateInput:   a.plan().StateInput,
		Ended:        n.Ended,
		Clock:        a.Clock,
		Logger:       a.Logger,
	})
	return func(ctx context.Context, _ json.RawMessage) (settle.Result, error) { return sw.Run(ctx) }, nil
}

// NewLogger is the JSON logger of a Lambda function: every record carries
// the function's name, and the level follows AWS_LAMBDA_LOG_LEVEL, which
// Lambda sets from LoggingConfig.ApplicationLogLevel (INFO when unset).
func NewLogger(w io.Writer, function string, getenv func(string) string) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToUpper(getenv("AWS_LAMBDA_LOG_LEVEL")) {
	case "TRACE", "DEBUG":
		level = slog.LevelDebug
	case "WARN":
		level = slog.LevelWarn
	case "ERROR", "FATAL":
		level = slog.LevelError
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("function", function)
}
