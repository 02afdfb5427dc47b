package samtest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awsapp"
	"github.com/longrun/longrun/internal/awstest"
)

// Long kinds go where they can finish, on kumo through the real start
// handler (environment from the template) and the real definition: a kind
// whose Timeout is over the Lambda worker's lands on the LongJobsQueue, and
// the JobsQueue — the one the Lambda worker's event source reads — never
// sees it; a kind without a Timeout of its own lands on the JobsQueue. The
// messages carry the job's limit for the worker; the Work state gets only
// the backstop.
func TestLongKindsGoToTheLongQueueOnKumo(t *testing.T) {
	t.Parallel()
	k := awstest.Kumo(t)
	k.ServeIntegrations(t)
	f := newFixture(t, stateMachineDefs{deliver: passDefinition}, "")
	nop := func(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
		return nil, nil
	}
	kinds := longrun.NewRegistry()
	kinds.Handle("short", nop, longrun.JobOptions{})
	kinds.Handle("long", nop, longrun.JobOptions{Timeout: 2 * time.Hour})
	app := f.app(t, "StartFunction", nil, nil)
	app.Jobs = kinds
	start, err := app.Start()
	if err != nil {
		t.Fatal(err)
	}
	started := map[string]string{} // execution id → kind
	for _, kind := range []string{"long", "short", "long"} {
		res, err := start(context.Background(), httpEvent(t, "start.json", "", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Body = `{"input":{},"job":"` + kind + `"}`
		}))
		wantStatus(t, "start "+kind, res, err, http.StatusAccepted)
		started[executionID(t, res.Body)] = kind
	}

	long := drain(t, k, f.long.URL, 2)
	short := drain(t, k, f.jobs.URL, 1)
	for _, m := range long {
		if started[m.ExecutionID] != "long" || m.Job != "long" || m.Limits == nil || m.Limits.TimeoutSeconds != 7200 {
			t.Errorf("long-jobs queue got %+v (limits %+v), want only the long kind's tasks with its 7200 s limit", m, m.Limits)
		}
	}
	for _, m := range short {
		if m.Job != "short" || m.Limits == nil || m.Limits.TimeoutSeconds != app.Config.Limits.TimeoutSeconds {
			t.Errorf("jobs queue got %+v (limits %+v), want only the short kind's task with the deployment's limit", m, m.Limits)
		}
	}
	// Nothing more arrives on the jobs queue: the Lambda worker never sees
	// a long job.
	if more := receive(t, k, f.jobs.URL, 1); len(more) != 0 {
		t.Fatalf("the jobs queue holds %+v besides the short task", more)
	}
}

// drain receives n task messages from the queue at url (waiting for them,
// as the executions send them), and deletes them.
func drain(t *testing.T, k awstest.Emulator, url string, n int) []longrun.TaskMessage {
	t.Helper()
	var out []longrun.TaskMessage
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		out = append(out, receive(t, k, url, 1)...)
	}
	if len(out) != n {
		t.Fatalf("%s: %d task messages, want %d", url, len(out), n)
	}
	return out
}

func receive(t *testing.T, k awstest.Emulator, url string, waitSeconds int32) []longrun.TaskMessage {
	t.Helper()
	res, err := k.SQS().ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []longrun.TaskMessage
	for _, m := range res.Messages {
		var tm longrun.TaskMessage
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &tm); err != nil {
			t.Fatalf("task message %s: %v", aws.ToString(m.Body), err)
		}
		out = append(out, tm)
		if _, err := k.SQS().DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The job's own limit counts from receipt on the AWS path too: on kumo,
// with `longrun worker`'s poller (real clock), a task that waited in the
// queue past its kind's 2 s limit still runs and succeeds, and a job that
// runs past it is failed with Job.Timeout, which reaches notify.
func TestJobLimitFromReceiptOnKumo(t *testing.T) {
	t.Parallel()
	f := newSinkFixture(t)
	app := f.app(t, "WorkerFunction", nil, map[string]string{awsapp.EnvJobHeartbeatSeconds: "1"})
	app.Jobs = longrun.NewRegistry()
	app.Jobs.Handle("quick", func(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
		return json.RawMessage(`{"ok":true}`), nil
	}, longrun.JobOptions{Timeout: 2 * time.Second})
	app.Jobs.Handle("stuck", func(ctx context.Context, _ json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
		<-ctx.Done() // runs until the worker's limit cancels it
		return nil, ctx.Err()
	}, longrun.JobOptions{Timeout: 2 * time.Second})
	poller, err := app.Poller(2, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ids := map[string]string{}
	for _, kind := range []string{"quick", "stuck"} {
		id := longrun.NewExecutionID()
		ids[kind] = id
		if err := f.engine.StartExecution(ctx, longrun.StateInput{
			ExecutionID: id, ExecutionARN: f.engine.ExecutionARN(id), Input: json.RawMessage(`{}`), Job: kind,
			Limits: longrun.Limits{TimeoutSeconds: 2, HeartbeatSeconds: 1}, BackstopSeconds: longrun.Backstop(2, 0), QueueURL: f.jobs.URL,
		}); err != nil {
			t.Fatal(err)
		}
	}
	// No worker yet: the tasks wait past their 2 s limit on kumo's own
	// clock, which the test cannot move.
	time.Sleep(3 * time.Second)
	pollCtx, stop := context.WithCancel(ctx)
	polled := make(chan error, 1)
	go func() { polled <- poller.Run(pollCtx) }()
	defer func() { stop(); <-polled }()

	if req := f.notified(t, ids["quick"]); req.Status != longrun.StatusSucceeded {
		t.Errorf("quick: notify got %+v, want SUCCEEDED after waiting past its limit", req)
	}
	req := f.notified(t, ids["stuck"])
	if req.Status != longrun.StatusFailed || req.Failure == nil || req.Failure.Error != longrun.ErrNameJobTimeout {
		t.Errorf("stuck: notify got %+v (failure %+v), want FAILED with %s", req, req.Failure, longrun.ErrNameJobTimeout)
	}
}
