// Package orchestratortest is the conformance suite of longrun.Orchestrator
// and longrun.TaskReporter: the one set of tests every engine runs with the
// real statemachine/longrun.asl.json and deliver.asl.json, so the local
// engine (internal/local) and Step Functions (internal/sfnengine, on kumo
// and on moto) cannot drift apart.
//
// Run it from the engine's own tests:
//
//	func TestConformance(t *testing.T) {
//		orchestratortest.Run(t, func(t *testing.T) orchestratortest.Harness { ... })
//	}
//
// setup is called once per case, and the cases run in parallel, so it must
// return a fresh jobs queue and notify function each time (the state
// machines may be shared if their queue and function are the case's own).
//
// The suite runs on real time: its one timeout case waits two seconds.
//
// Start, Task and Notified are exported for an engine's own cases that are
// not the suite's (sfnengine's heartbeat timeout on a definition given a
// heartbeat), so they drive a Harness as the suite does.
//
// # Known differences
//
// Where an emulator is known to differ from AWS, the harness says so in
// Quirks and the suite asserts the emulator's behaviour instead of AWS's:
// a fixed emulator then fails the suite, and the quirk (and its line in
// docs/emulators.md) can go. Everything else is asserted as AWS documents it.
package orchestratortest

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/longrun/longrun"
)

// Harness is what an engine hands the suite.
type Harness struct {
	Orchestrator longrun.Orchestrator
	Tasks        longrun.TaskReporter
	// Jobs is the queue the Work state sends its task messages to.
	Jobs longrun.Queue
	// Notify gets every request the state machines send to the notify
	// function. The harness's notify answers a deliver request with
	// longrun.DeliverResult{Done: true} and every other with {}.
	Notify <-chan longrun.NotifyRequest
	// Describe returns an execution as DescribeExecution shows it.
	Describe func(ctx context.Context, arn string) (Execution, error)
	// Quirks are the engine's known differences from AWS.
	Quirks Quirks
}

// Execution is what the suite reads of a described execution.
type Execution struct {
	Status       longrun.Status
	Error, Cause string
	Output       json.RawMessage // SUCCEEDED only
}

// Quirks are known differences from AWS (docs/emulators.md), each asserted
// as the engine does it.
type Quirks struct {
	// FailStateErrorEmpty: the Fail state's ErrorPath and CausePath are
	// ignored, so a failed job's execution ends with an empty error and
	// cause (kumo). AWS: the job's error and cause.
	FailStateErrorEmpty bool
	// LateTaskFailureAccepted: SendTaskFailure for a task that has already
	// completed succeeds, and changes nothing (moto). AWS: the token is no
	// longer valid (ETASKGONE).
	LateTaskFailureAccepted bool
	// StoppedTokenClosesLate: a stopped execution's task token is closed
	// when its waiting state unwinds, a moment after StopExecution returns,
	// and a heartbeat in between succeeds (kumo). AWS: StopExecution closes
	// it. The suite waits up to stoppedTokenWait for it to close.
	StoppedTokenClosesLate bool
}

// Timeouts of the suite's waits.
const (
	taskWait   = 15 * time.Second
	notifyWait = 15 * time.Second
	endWait    = 30 * time.Second
	// stoppedTokenWait bounds Quirks.StoppedTokenClosesLate.
	stoppedTokenWait = 5 * time.Second
)

// Run runs every case against the engines setup returns.
func Run(t *testing.T, setup func(t *testing.T) Harness) {
	cases := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"SuccessReachesNotify", testSuccessReachesNotify},
		{"FailureReachesNotify", testFailureReachesNotify},
		{"RepeatedStart", testRepeatedStart},
		{"Stop", testStop},
		{"StopUnknown", testStopUnknown},
		{"UnknownToken", testUnknownToken},
		{"TaskTimeout", testTaskTimeout},
		{"Redeliver", testRedeliver},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, setup(t))
		})
	}
}

var defaultLimits = longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30}

// Start starts an execution of input with limits and a new id.
func Start(t *testing.T, h Harness, input string, limits longrun.Limits) longrun.StateInput {
	t.Helper()
	id := longrun.NewExecutionID()
	in := longrun.StateInput{
		ExecutionID:  id,
		ExecutionARN: h.Orchestrator.ExecutionARN(id),
		Input:        json.RawMessage(input),
		Limits:       limits,
	}
	if err := h.Orchestrator.StartExecution(context.Background(), in); err != nil {
		t.Fatalf("StartExecution: %v", err)
	}
	return in
}

// Task receives the execution's task message from the jobs queue and
// deletes it.
func Task(t *testing.T, h Harness, id string) longrun.TaskMessage {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(taskWait)
	for time.Now().Before(deadline) {
		msgs, err := h.Jobs.Receive(ctx, 1, time.Second, time.Minute)
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
			if err := h.Jobs.Delete(ctx, m.Receipt); err != nil {
				t.Fatalf("delete task message: %v", err)
			}
			return tm
		}
	}
	t.Fatalf("no task message for %s within %s", id, taskWait)
	return longrun.TaskMessage{}
}

// Notified returns the next request the state machines sent notify.
func Notified(t *testing.T, h Harness) longrun.NotifyRequest {
	t.Helper()
	select {
	case r := <-h.Notify:
		return r
	case <-time.After(notifyWait):
		t.Fatalf("notify was not invoked within %s", notifyWait)
		return longrun.NotifyRequest{}
	}
}

// ended waits until the execution is no longer RUNNING.
func ended(t *testing.T, h Harness, arn string) Execution {
	t.Helper()
	deadline := time.Now().Add(endWait)
	for {
		e, err := h.Describe(context.Background(), arn)
		if err != nil {
			t.Fatalf("describe %s: %v", arn, err)
		}
		if e.Status != longrun.StatusRunning {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still RUNNING after %s", arn, endWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if longrun.ErrorCode(err) != code {
		t.Errorf("%s = %v (code %q), want code %q", what, err, longrun.ErrorCode(err), code)
	}
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// The Work state hands the worker its execution's ARN, id, input and a
// token; the worker's output ends the execution SUCCEEDED with that output
// after notify's finalize. The completed token is gone after.
func testSuccessReachesNotify(t *testing.T, h Harness) {
	ctx := context.Background()
	in := Start(t, h, `{"timer":1}`, defaultLimits)
	tm := Task(t, h, in.ExecutionID)
	if tm.ExecutionARN != in.ExecutionARN || !sameJSON(tm.Input, in.Input) || tm.TaskToken == "" {
		t.Fatalf("task message = %+v, want the execution's ARN, input and a token", tm)
	}
	if err := h.Tasks.SendTaskHeartbeat(ctx, tm.TaskToken); err != nil {
		t.Fatalf("SendTaskHeartbeat(live token): %v", err)
	}
	output := json.RawMessage(`{"message":"ramen is ready"}`)
	if err := h.Tasks.SendTaskSuccess(ctx, tm.TaskToken, output); err != nil {
		t.Fatalf("SendTaskSuccess: %v", err)
	}
	req := Notified(t, h)
	if req.Action != longrun.NotifyFinalize || req.ExecutionID != in.ExecutionID || req.Status != longrun.StatusSucceeded || !sameJSON(req.Output, output) {
		t.Errorf("notify got %+v, want finalize SUCCEEDED of %s with the job's output", req, in.ExecutionID)
	}
	e := ended(t, h, in.ExecutionARN)
	if e.Status != longrun.StatusSucceeded || !sameJSON(e.Output, output) {
		t.Errorf("execution ended %s with output %s, want SUCCEEDED with the job's output", e.Status, e.Output)
	}
	wantCode(t, "SendTaskSuccess(completed token)", h.Tasks.SendTaskSuccess(ctx, tm.TaskToken, output), longrun.ETASKGONE)
	lateFailure := longrun.ETASKGONE
	if h.Quirks.LateTaskFailureAccepted {
		lateFailure = ""
	}
	wantCode(t, "SendTaskFailure(completed token)", h.Tasks.SendTaskFailure(ctx, tm.TaskToken, "Job.Failed", "late"), lateFailure)
	wantCode(t, "SendTaskHeartbeat(completed token)", h.Tasks.SendTaskHeartbeat(ctx, tm.TaskToken), longrun.ETASKGONE)
	if e := ended(t, h, in.ExecutionARN); e.Status != longrun.StatusSucceeded || !sameJSON(e.Output, output) {
		t.Errorf("after the late calls the execution is %s with output %s, want SUCCEEDED as before", e.Status, e.Output)
	}
	wantCode(t, "StopExecution(ended)", h.Orchestrator.StopExecution(ctx, in.ExecutionARN, longrun.ErrNameStopped, "late"), longrun.ENOTRUNNING)
	// The name stays taken once the execution has ended, whatever the input.
	wantCode(t, "StartExecution(ended, same input)", h.Orchestrator.StartExecution(ctx, in), longrun.EDUPLICATE)
}

// The worker's failure reaches notify with its error and cause, and the
// execution ends FAILED with them (the Fail state's ErrorPath/CausePath).
func testFailureReachesNotify(t *testing.T, h Harness) {
	ctx := context.Background()
	in := Start(t, h, `{"timer":1}`, defaultLimits)
	tm := Task(t, h, in.ExecutionID)
	if err := h.Tasks.SendTaskFailure(ctx, tm.TaskToken, "Job.Failed", "the oven caught fire"); err != nil {
		t.Fatalf("SendTaskFailure: %v", err)
	}
	req := Notified(t, h)
	if req.Action != longrun.NotifyFinalize || req.Status != longrun.StatusFailed || req.Failure == nil ||
		req.Failure.Error != "Job.Failed" || req.Failure.Cause != "the oven caught fire" {
		t.Errorf("notify got %+v (failure %+v), want finalize FAILED with the job's error and cause", req, req.Failure)
	}
	e := ended(t, h, in.ExecutionARN)
	wantErr, wantCause := "Job.Failed", "the oven caught fire"
	if h.Quirks.FailStateErrorEmpty {
		wantErr, wantCause = "", ""
	}
	if e.Status != longrun.StatusFailed || e.Error != wantErr || e.Cause != wantCause {
		t.Errorf("execution ended %s %q %q, want FAILED %q %q", e.Status, e.Error, e.Cause, wantErr, wantCause)
	}
	wantCode(t, "SendTaskSuccess(failed token)", h.Tasks.SendTaskSuccess(ctx, tm.TaskToken, json.RawMessage(`{}`)), longrun.ETASKGONE)
}

// A crashed start retried with the same id and input starts nothing new;
// the same id with another input is refused. One task message, one run.
func testRepeatedStart(t *testing.T, h Harness) {
	ctx := context.Background()
	in := Start(t, h, `{"timer":1}`, defaultLimits)
	if err := h.Orchestrator.StartExecution(ctx, in); err != nil {
		t.Fatalf("repeated StartExecution (same id and input): %v", err)
	}
	other := in
	other.Input = json.RawMessage(`{"timer":2}`)
	wantCode(t, "StartExecution(same id, other input)", h.Orchestrator.StartExecution(ctx, other), longrun.EDUPLICATE)
	tm := Task(t, h, in.ExecutionID)
	if err := h.Tasks.SendTaskSuccess(ctx, tm.TaskToken, json.RawMessage(`{}`)); err != nil {
		t.Fatalf("SendTaskSuccess: %v", err)
	}
	if e := ended(t, h, in.ExecutionARN); e.Status != longrun.StatusSucceeded {
		t.Errorf("execution ended %s, want SUCCEEDED", e.Status)
	}
	// Nothing else for this execution on the queue.
	msgs, err := h.Jobs.Receive(ctx, 10, 0, time.Minute)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(msgs) != 0 {
		t.Errorf("the repeated start sent %d more task messages: %+v", len(msgs), msgs)
	}
}

// A stopped execution ends ABORTED with the stop's error; its token is
// gone and a second stop says it is not running.
func testStop(t *testing.T, h Harness) {
	ctx := context.Background()
	in := Start(t, h, `{"timer":600}`, defaultLimits)
	tm := Task(t, h, in.ExecutionID) // the execution waits on the token now
	if err := h.Orchestrator.StopExecution(ctx, in.ExecutionARN, longrun.ErrNameStopped, "stopped by the client"); err != nil {
		t.Fatalf("StopExecution: %v", err)
	}
	e := ended(t, h, in.ExecutionARN)
	if e.Status != longrun.StatusAborted || e.Error != longrun.ErrNameStopped {
		t.Errorf("execution = %s %q, want ABORTED %q", e.Status, e.Error, longrun.ErrNameStopped)
	}
	wantCode(t, "second StopExecution", h.Orchestrator.StopExecution(ctx, in.ExecutionARN, longrun.ErrNameStopped, "again"), longrun.ENOTRUNNING)
	err := h.Tasks.SendTaskHeartbeat(ctx, tm.TaskToken)
	if h.Quirks.StoppedTokenClosesLate {
		deadline := time.Now().Add(stoppedTokenWait)
		for err == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			err = h.Tasks.SendTaskHeartbeat(ctx, tm.TaskToken)
		}
	}
	wantCode(t, "SendTaskHeartbeat(stopped execution)", err, longrun.ETASKGONE)
	wantCode(t, "SendTaskSuccess(stopped execution)", h.Tasks.SendTaskSuccess(ctx, tm.TaskToken, json.RawMessage(`{}`)), longrun.ETASKGONE)
}

func testStopUnknown(t *testing.T, h Harness) {
	arn := h.Orchestrator.ExecutionARN(longrun.NewExecutionID())
	wantCode(t, "StopExecution(unknown)", h.Orchestrator.StopExecution(context.Background(), arn, "x", "y"), longrun.ENOTFOUND)
}

func testUnknownToken(t *testing.T, h Harness) {
	ctx := context.Background()
	wantCode(t, "SendTaskSuccess(unknown token)", h.Tasks.SendTaskSuccess(ctx, "not-a-token", json.RawMessage(`{}`)), longrun.ETASKGONE)
	wantCode(t, "SendTaskFailure(unknown token)", h.Tasks.SendTaskFailure(ctx, "not-a-token", "Job.Failed", "x"), longrun.ETASKGONE)
	wantCode(t, "SendTaskHeartbeat(unknown token)", h.Tasks.SendTaskHeartbeat(ctx, "not-a-token"), longrun.ETASKGONE)
}

// The Work state's TimeoutSecondsPath bounds the task however often the
// worker heartbeats: it fails the execution through FinalizeFailure with
// States.Timeout, and its token is gone. (The heartbeat must be shorter
// than the timeout: the local engine, following the ASL, fails the task
// with States.Runtime otherwise.)
func testTaskTimeout(t *testing.T, h Harness) {
	in := Start(t, h, `{"timer":600}`, longrun.Limits{TimeoutSeconds: 2, HeartbeatSeconds: 1})
	tm := Task(t, h, in.ExecutionID)
	stop := make(chan struct{})
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				_ = h.Tasks.SendTaskHeartbeat(context.Background(), tm.TaskToken)
			}
		}
	}()
	req := Notified(t, h)
	close(stop)
	<-beating
	if req.Action != longrun.NotifyFinalize || req.Status != longrun.StatusFailed || req.Failure == nil || req.Failure.Error != "States.Timeout" {
		t.Errorf("notify got %+v (failure %+v), want finalize FAILED with States.Timeout", req, req.Failure)
	}
	if e := ended(t, h, in.ExecutionARN); e.Status != longrun.StatusFailed {
		t.Errorf("execution ended %s, want FAILED", e.Status)
	}
	wantCode(t, "SendTaskSuccess(timed-out token)", h.Tasks.SendTaskSuccess(context.Background(), tm.TaskToken, json.RawMessage(`{}`)), longrun.ETASKGONE)
}

// Each delivery round is its own deliver execution, which invokes notify
// with deliver. A round whose loop has ended gives ENOTRUNNING.
func testRedeliver(t *testing.T, h Harness) {
	ctx := context.Background()
	id := longrun.NewExecutionID()
	for round := range 2 {
		if err := h.Orchestrator.Redeliver(ctx, id, round); err != nil {
			t.Fatalf("Redeliver round %d: %v", round, err)
		}
		if req := Notified(t, h); req.Action != longrun.NotifyDeliver || req.ExecutionID != id {
			t.Errorf("notify got %+v, want deliver for %s", req, id)
		}
	}
	// notify answered done, so round 1's loop ends; then Redeliver of it
	// starts nothing and tells the caller to move on.
	deadline := time.Now().Add(endWait)
	for {
		err := h.Orchestrator.Redeliver(ctx, id, 1)
		if longrun.IsCode(err, longrun.ENOTRUNNING) {
			break
		}
		if err != nil {
			t.Fatalf("Redeliver of round 1 again: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("round 1's loop did not end within %s", endWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case req := <-h.Notify:
		t.Errorf("a Redeliver of a running round invoked notify again: %+v", req)
	default:
	}
}
