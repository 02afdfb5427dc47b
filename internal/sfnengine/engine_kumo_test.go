package sfnengine_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/sfnengine"
	"github.com/longrun/longrun/internal/sqsqueue"
)

// env is the real longrun and deliver state machines on kumo, with a jobs
// queue and a notify function that reports every request it gets.
type env struct {
	engine  *sfnengine.Engine
	client  *sfn.Client
	deliver string // the deliver state machine's ARN
	jobs    *sqsqueue.Queue
	notify  chan longrun.NotifyRequest
}

func setup(t *testing.T) *env { return setupHeartbeat(t, 30) }

// setupHeartbeat is setup with the Work state's heartbeat fixed at seconds
// (kumo ignores HeartbeatSecondsPath; see awstest.FixHeartbeatPath).
func setupHeartbeat(t *testing.T, seconds int) *env {
	t.Helper()
	k := awstest.Kumo(t)
	k.ServeIntegrations(t)
	jobs := k.CreateQueue(t, awstest.UniqueName("jobs"), nil)
	notify := make(chan longrun.NotifyRequest, 10)
	fn := k.ServeFunction(t, awstest.UniqueName("notify"), 10*time.Second, lambda.NewHandler(
		func(_ context.Context, req longrun.NotifyRequest) (any, error) {
			notify <- req
			if req.Action == longrun.NotifyDeliver {
				return longrun.DeliverResult{Done: true}, nil
			}
			return struct{}{}, nil
		}))
	vars := map[string]string{"JobsQueueUrl": jobs.URL, "NotifyFunctionArn": fn.ARN}
	sm := k.CreateStateMachine(t, awstest.UniqueName("longrun"), definition(t, "longrun.asl.json", vars, seconds))
	deliver := k.CreateStateMachine(t, awstest.UniqueName("deliver"), definition(t, "deliver.asl.json", vars, seconds))
	client := k.SFN()
	return &env{
		engine:  sfnengine.New(client, sfnengine.Config{StateMachineARN: sm, DeliverStateMachineARN: deliver}),
		client:  client,
		deliver: deliver,
		jobs:    sqsqueue.New(k.SQS(), jobs.URL),
		notify:  notify,
	}
}

func definition(t *testing.T, name string, vars map[string]string, heartbeat int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "statemachine", name))
	if err != nil {
		t.Fatalf("read state machine: %v", err)
	}
	// kumo panics on a heartbeat for a task with HeartbeatSecondsPath.
	def, err := awstest.FixHeartbeatPath(awstest.Substitute(string(b), vars), heartbeat)
	if err != nil {
		t.Fatal(err)
	}
	return def
}

func (e *env) start(t *testing.T, input string) longrun.StateInput {
	t.Helper()
	return e.startLimits(t, input, longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30})
}

func (e *env) startLimits(t *testing.T, input string, limits longrun.Limits) longrun.StateInput {
	t.Helper()
	id := longrun.NewExecutionID()
	in := longrun.StateInput{
		ExecutionID:  id,
		ExecutionARN: e.engine.ExecutionARN(id),
		Input:        json.RawMessage(input),
		Limits:       limits,
	}
	if err := e.engine.StartExecution(context.Background(), in); err != nil {
		t.Fatalf("StartExecution: %v", err)
	}
	return in
}

// task receives the execution's task message from the jobs queue.
func (e *env) task(t *testing.T, id string) longrun.TaskMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		msgs, err := e.jobs.Receive(context.Background(), 1, 2*time.Second, time.Minute)
		if err != nil {
			t.Fatalf("receive task: %v", err)
		}
		for _, m := range msgs {
			var tm longrun.TaskMessage
			if err := json.Unmarshal([]byte(m.Body), &tm); err != nil {
				t.Fatalf("task message %s: %v", m.Body, err)
			}
			if tm.ExecutionID != id {
				t.Fatalf("task message for %s, want %s", tm.ExecutionID, id)
			}
			_ = e.jobs.Delete(context.Background(), m.Receipt)
			return tm
		}
	}
	t.Fatalf("no task message for %s within 10s", id)
	return longrun.TaskMessage{}
}

func (e *env) notified(t *testing.T) longrun.NotifyRequest {
	t.Helper()
	select {
	case r := <-e.notify:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("notify was not invoked within 10s")
		return longrun.NotifyRequest{}
	}
}

func (e *env) ended(t *testing.T, arn string) *sfn.DescribeExecutionOutput {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := e.client.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			t.Fatalf("describe: %v", err)
		}
		if out.Status != sfntypes.ExecutionStatusRunning {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still RUNNING after 10s", arn)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if longrun.ErrorCode(err) != code {
		t.Fatalf("%s = %v (code %q), want code %q", what, err, longrun.ErrorCode(err), code)
	}
}

func TestKumoSuccessReachesNotify(t *testing.T) {
	t.Parallel()
	e, ctx := setup(t), context.Background()
	in := e.start(t, `{"timer":1}`)
	// A crashed start retried: the same name and input is no error.
	if err := e.engine.StartExecution(ctx, in); err != nil {
		t.Fatalf("repeated StartExecution: %v", err)
	}
	other := in
	other.Input = json.RawMessage(`{"timer":2}`)
	wantCode(t, "StartExecution(same id, other input)", e.engine.StartExecution(ctx, other), longrun.EDUPLICATE)

	task := e.task(t, in.ExecutionID)
	if task.ExecutionARN != in.ExecutionARN || string(task.Input) != `{"timer":1}` || task.TaskToken == "" {
		t.Fatalf("task message = %+v, want the execution's ARN, input and a token", task)
	}
	if err := e.engine.SendTaskHeartbeat(ctx, task.TaskToken); err != nil {
		t.Fatalf("SendTaskHeartbeat(live token): %v", err)
	}
	output := json.RawMessage(`{"message":"ramen is ready"}`)
	if err := e.engine.SendTaskSuccess(ctx, task.TaskToken, output); err != nil {
		t.Fatalf("SendTaskSuccess: %v", err)
	}

	req := e.notified(t)
	if req.Action != longrun.NotifyFinalize || req.ExecutionID != in.ExecutionID || req.Status != longrun.StatusSucceeded || string(req.Output) != string(output) {
		t.Errorf("notify got %+v, want finalize SUCCEEDED of %s with the job's output", req, in.ExecutionID)
	}
	out := e.ended(t, in.ExecutionARN)
	if out.Status != sfntypes.ExecutionStatusSucceeded || aws.ToString(out.Output) != string(output) {
		t.Errorf("execution ended %s with output %s, want SUCCEEDED with the job's output", out.Status, aws.ToString(out.Output))
	}

	wantCode(t, "SendTaskSuccess(completed token)", e.engine.SendTaskSuccess(ctx, task.TaskToken, output), longrun.ETASKGONE)
	wantCode(t, "SendTaskHeartbeat(completed token)", e.engine.SendTaskHeartbeat(ctx, task.TaskToken), longrun.ETASKGONE)
	wantCode(t, "SendTaskFailure(unknown token)", e.engine.SendTaskFailure(ctx, "not-a-token", "Job.Failed", "x"), longrun.ETASKGONE)
	wantCode(t, "StopExecution(ended)", e.engine.StopExecution(ctx, in.ExecutionARN, longrun.ErrNameStopped, "late"), longrun.ENOTRUNNING)
	wantCode(t, "StartExecution(ended, same input)", e.engine.StartExecution(ctx, in), longrun.EDUPLICATE)
}

func TestKumoFailureReachesNotify(t *testing.T) {
	t.Parallel()
	e, ctx := setup(t), context.Background()
	in := e.start(t, `{"timer":1}`)
	task := e.task(t, in.ExecutionID)
	if err := e.engine.SendTaskFailure(ctx, task.TaskToken, "Job.Failed", "the oven caught fire"); err != nil {
		t.Fatalf("SendTaskFailure: %v", err)
	}
	req := e.notified(t)
	if req.Action != longrun.NotifyFinalize || req.Status != longrun.StatusFailed || req.Failure == nil ||
		req.Failure.Error != "Job.Failed" || req.Failure.Cause != "the oven caught fire" {
		t.Errorf("notify got %+v (failure %+v), want finalize FAILED with the job's error and cause", req, req.Failure)
	}
	out := e.ended(t, in.ExecutionARN)
	if out.Status != sfntypes.ExecutionStatusFailed {
		t.Errorf("execution ended %s, want FAILED", out.Status)
	}
	// On AWS the Fail state's ErrorPath/CausePath give Job.Failed and the
	// cause; kumo ignores both (see the report).
	t.Logf("kumo: execution error %q cause %q", aws.ToString(out.Error), aws.ToString(out.Cause))
}

func TestKumoStop(t *testing.T) {
	t.Parallel()
	e, ctx := setup(t), context.Background()
	in := e.start(t, `{"timer":600}`)
	task := e.task(t, in.ExecutionID) // the execution waits on the token now
	if err := e.engine.StopExecution(ctx, in.ExecutionARN, longrun.ErrNameStopped, "stopped by the client"); err != nil {
		t.Fatalf("StopExecution: %v", err)
	}
	out := e.ended(t, in.ExecutionARN)
	if out.Status != sfntypes.ExecutionStatusAborted || aws.ToString(out.Error) != longrun.ErrNameStopped {
		t.Errorf("execution = %s %q, want ABORTED %q", out.Status, aws.ToString(out.Error), longrun.ErrNameStopped)
	}
	wantCode(t, "second StopExecution", e.engine.StopExecution(ctx, in.ExecutionARN, longrun.ErrNameStopped, "again"), longrun.ENOTRUNNING)
	// kumo closes the stopped execution's token when its waiting state
	// unwinds, a moment after StopExecution returns (docs/emulators.md).
	deadline := time.Now().Add(5 * time.Second)
	err := e.engine.SendTaskHeartbeat(ctx, task.TaskToken)
	for err == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		err = e.engine.SendTaskHeartbeat(ctx, task.TaskToken)
	}
	wantCode(t, "SendTaskHeartbeat(stopped execution)", err, longrun.ETASKGONE)
	wantCode(t, "StopExecution(unknown)", e.engine.StopExecution(ctx, e.engine.ExecutionARN(longrun.NewExecutionID()), "x", "y"), longrun.ENOTFOUND)
}

func TestKumoRedeliver(t *testing.T) {
	t.Parallel()
	e := setup(t)
	id := longrun.NewExecutionID()
	for round := range 2 { // each round has its own execution name
		if err := e.engine.Redeliver(context.Background(), id, round); err != nil {
			t.Fatalf("Redeliver: %v", err)
		}
		if req := e.notified(t); req.Action != longrun.NotifyDeliver || req.ExecutionID != id {
			t.Errorf("notify got %+v, want deliver for %s", req, id)
		}
	}
	// Round 1 again once its loop has ended (notify answered done): nothing
	// starts, and the caller hears it must move on to the next round.
	arn := strings.Replace(e.deliver, ":stateMachine:", ":execution:", 1) + ":" + longrun.DeliverName(id, 1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := e.client.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err == nil && out.Status != sfntypes.ExecutionStatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("round 1's loop did not end within 30 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantCode(t, "Redeliver of an ended round", e.engine.Redeliver(context.Background(), id, 1), longrun.ENOTRUNNING)
}

// The Work state's TimeoutSecondsPath bounds the task: a worker that never
// answers fails the execution through FinalizeFailure with States.Timeout.
func TestKumoTaskTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t)
	in := e.startLimits(t, `{"timer":600}`, longrun.Limits{TimeoutSeconds: 1, HeartbeatSeconds: 30})
	task := e.task(t, in.ExecutionID)
	req := e.notified(t)
	if req.Status != longrun.StatusFailed || req.Failure == nil || req.Failure.Error != "States.Timeout" {
		t.Errorf("notify got %+v (failure %+v), want finalize FAILED with States.Timeout", req, req.Failure)
	}
	wantCode(t, "SendTaskSuccess(timed-out token)", e.engine.SendTaskSuccess(context.Background(), task.TaskToken, nil), longrun.ETASKGONE)
}

// A task with HeartbeatSeconds (kumo's stand-in: statemachine/longrun.asl.json
// sets none, see awstest.FixHeartbeatPath) that gets no heartbeat is lost.
// On AWS the error is States.HeartbeatTimeout; kumo reports States.Timeout.
// Either way the Catch sends the execution to FinalizeFailure.
func TestKumoHeartbeatTimeout(t *testing.T) {
	t.Parallel()
	e := setupHeartbeat(t, 1)
	in := e.start(t, `{"timer":600}`)
	task := e.task(t, in.ExecutionID)
	req := e.notified(t)
	if req.Status != longrun.StatusFailed || req.Failure == nil {
		t.Fatalf("notify got %+v, want finalize FAILED", req)
	}
	t.Logf("kumo: heartbeat timeout reaches notify as %q (AWS: States.HeartbeatTimeout after 2 retries)", req.Failure.Error)
	wantCode(t, "SendTaskHeartbeat(lost token)", e.engine.SendTaskHeartbeat(context.Background(), task.TaskToken), longrun.ETASKGONE)
}
