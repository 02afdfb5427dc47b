package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/dynamostore"
	"github.com/longrun/longrun/internal/sfnengine"
)

// TestWorkerCommandOnKumo runs `longrun worker` — the SQS poller for jobs
// past Lambda's 15 minutes — against the AWS emulator: a real execution of
// statemachine/longrun.asl.json hands it the job through SQS, it runs the
// ramen job and completes the task token through Step Functions, and the
// state machine goes on to invoke notify with the job's output. Then SIGTERM
// (ctx cancelled) drains it and it exits cleanly.
func TestWorkerCommandOnKumo(t *testing.T) {
	// Not parallel: the AWS SDK reads its endpoint and credentials from the
	// process environment, as it does in production.
	k := awstest.Kumo(t)
	k.ServeIntegrations(t)
	ctx := context.Background()

	var mu sync.Mutex
	var finalized []longrun.NotifyRequest
	notified := make(chan struct{}, 1)
	notify := k.ServeFunction(t, awstest.UniqueName("notify"), 10*time.Second, lambda.NewHandler(
		func(_ context.Context, req longrun.NotifyRequest) (struct{}, error) {
			mu.Lock()
			finalized = append(finalized, req)
			mu.Unlock()
			select {
			case notified <- struct{}{}:
			default:
			}
			return struct{}{}, nil
		}))
	table := awstest.UniqueName("table")
	if err := dynamostore.CreateTable(ctx, k.DynamoDB(), table, ""); err != nil {
		t.Fatal(err)
	}
	queue := k.CreateQueue(t, awstest.UniqueName("jobs"), nil)
	def, err := os.ReadFile(repoFile(t, "statemachine/longrun.asl.json"))
	if err != nil {
		t.Fatal(err)
	}
	// kumo ignores HeartbeatSecondsPath and then panics on a heartbeat
	// (docs/emulators.md): give it the literal it understands.
	fixed, err := awstest.FixHeartbeatPath(awstest.Substitute(string(def), map[string]string{"JobsQueueUrl": queue.URL, "NotifyFunctionArn": notify.ARN}), 30)
	if err != nil {
		t.Fatal(err)
	}
	engine := sfnengine.New(k.SFN(), sfnengine.Config{StateMachineARN: k.CreateStateMachine(t, awstest.UniqueName("longrun"), fixed)})
	id := longrun.NewExecutionID()
	if err := engine.StartExecution(ctx, longrun.StateInput{ExecutionID: id, ExecutionARN: engine.ExecutionARN(id),
		Input: json.RawMessage(`{"seconds": 0}`), Limits: longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30}}); err != nil {
		t.Fatal(err)
	}

	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": k.URL, "AWS_REGION": awstest.Region,
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
	} {
		t.Setenv(k, v)
	}
	env := map[string]string{"LONGRUN_TABLE_NAME": table, "LONGRUN_JOBS_QUEUE_URL": queue.URL, "LONGRUN_JOB_HEARTBEAT_SECONDS": "30"}
	workerCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(workerCtx, []string{"longrun", "worker", "--concurrency", "2"}, func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
	}()

	select {
	case <-notified:
	case err := <-done:
		t.Fatalf("longrun worker exited early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the state machine did not reach notify within 60 s: the worker did not complete the task")
	}
	stop() // what SIGTERM does
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("longrun worker after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("longrun worker did not drain and exit within 60 s")
	}

	mu.Lock()
	defer mu.Unlock()
	got := finalized[0]
	if got.Action != longrun.NotifyFinalize || got.ExecutionID != id || got.Status != longrun.StatusSucceeded || !strings.Contains(string(got.Output), "ramen is boiled") {
		t.Fatalf("notify got %+v, want finalize SUCCEEDED of %s with the ramen message", got, id)
	}
}

// `longrun worker --queue` names which of the stack's queues to read; a
// value it does not know is refused with the ones it does, before anything
// is polled.
func TestWorkerQueueFlag(t *testing.T) {
	t.Parallel()
	env := map[string]string{"LONGRUN_TABLE_NAME": "t", "AWS_REGION": "us-east-1", "LONGRUN_JOBS_QUEUE_URL": "http://127.0.0.1:1/jobs"}
	err := run(context.Background(), []string{"longrun", "worker", "--queue", "short"}, func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "want all, long or jobs") {
		t.Fatalf("worker --queue short = %v, want the values it takes", err)
	}
	// Only the long-jobs queue, and the deployment gave none: said so.
	err = run(context.Background(), []string{"longrun", "worker", "--queue", "long"}, func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "LONGRUN_LONG_JOBS_QUEUE_URL") {
		t.Fatalf("worker --queue long without its URL = %v, want the variable named", err)
	}
}
