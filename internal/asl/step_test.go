package asl

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// These tests drive the stepping API directly, as the durable engine does.

const stepDefinition = `{
  "StartAt": "Work",
  "States": {
    "Work": {
      "Type": "Task",
      "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
      "Parameters": {"token.$": "$$.Task.Token", "n.$": "$.n", "retry.$": "$$.State.RetryCount"},
      "TimeoutSecondsPath": "$.limits.timeout",
      "HeartbeatSecondsPath": "$.limits.heartbeat",
      "ResultSelector": {"value.$": "$.v", "state.$": "$$.State.Name"},
      "ResultPath": "$.result",
      "Retry": [
        {"ErrorEquals": ["States.HeartbeatTimeout"], "IntervalSeconds": 5, "MaxAttempts": 2, "BackoffRate": 3},
        {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}
      ],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Failed"}],
      "Next": "Pause"
    },
    "Pause": {"Type": "Wait", "Seconds": 30, "End": true},
    "Failed": {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"}
  }
}`

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func setupStep(t *testing.T) (*StateMachine, *Context) {
	t.Helper()
	m, err := Parse([]byte(stepDefinition))
	if err != nil {
		t.Fatal(err)
	}
	return m, &Context{Execution: ExecutionContext{Name: "e"}, Task: TaskContext{Token: "tok-1"}}
}

func TestEnterPreparesTheTask(t *testing.T) {
	t.Parallel()
	m, c := setupStep(t)
	before := *c
	in := json.RawMessage(`{"n": 7, "limits": {"timeout": 600, "heartbeat": 60}}`)
	step, err := m.Enter("Work", in, c, t0)
	if err != nil {
		t.Fatal(err)
	}
	if step.Kind != StepTask || step.Task == nil {
		t.Fatalf("step %+v, want StepTask", step)
	}
	want := Task{State: "Work", Resource: "arn:aws:states:::sqs:sendMessage", Pattern: WaitForTaskToken, TimeoutSeconds: 600, HeartbeatSeconds: 60}
	got := *step.Task
	got.Parameters = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("task %+v, want %+v", got, want)
	}
	assertJSON(t, "parameters", step.Task.Parameters, json.RawMessage(`{"token":"tok-1","n":7,"retry":0}`))
	if !reflect.DeepEqual(*c, before) {
		t.Errorf("Enter modified the caller's context: %+v", *c)
	}
	if m.Pattern("Work") != WaitForTaskToken || m.Pattern("Pause") != "" || m.StateType("Pause") != "Wait" || m.StateType("x") != "" {
		t.Error("Pattern/StateType do not describe the states")
	}
	if m.StartAt() != "Work" || m.TimeoutSeconds() != 0 {
		t.Error("StartAt/TimeoutSeconds do not describe the machine")
	}
}

func TestEnterMisuseIsAGoError(t *testing.T) {
	t.Parallel()
	m, c := setupStep(t)
	if _, err := m.Enter("Nope", json.RawMessage(`{}`), c, t0); err == nil || !strings.Contains(err.Error(), `"Nope"`) {
		t.Errorf("unknown state: err = %v", err)
	}
	if _, err := m.Enter("Pause", json.RawMessage(`{`), c, t0); err == nil {
		t.Error("input that is not JSON: no error")
	}
}

func TestTaskSucceededAppliesResultSelectorAndResultPath(t *testing.T) {
	t.Parallel()
	m, c := setupStep(t)
	step := m.TaskSucceeded("Work", json.RawMessage(`{"n":1}`), json.RawMessage(`{"v":"done","noise":1}`), c)
	if step.Kind != StepNext || step.Next != "Pause" {
		t.Fatalf("step %+v, want StepNext to Pause", step)
	}
	assertJSON(t, "output", step.Output, json.RawMessage(`{"n":1,"result":{"value":"done","state":"Work"}}`))
}

func TestTaskFailedRetriesThenCatches(t *testing.T) {
	t.Parallel()
	m, c := setupStep(t)
	in := json.RawMessage(`{"n": 1, "limits": {"timeout": 600, "heartbeat": 60}}`)
	rnd := rand.New(rand.NewPCG(1, 1))

	c.Task.Token = "tok-2" // the engine's token for the next attempt
	s1 := m.TaskFailed("Work", in, ErrHeartbeatTimeout, "quiet", nil, c, t0, rnd)
	if s1.Kind != StepRetry || !s1.Until.Equal(t0.Add(5*time.Second)) || !reflect.DeepEqual(s1.Retries, []int{1, 0}) {
		t.Fatalf("first failure: %+v, want StepRetry at +5s with Retries [1 0]", s1)
	}
	assertJSON(t, "retry parameters", s1.Task.Parameters, json.RawMessage(`{"token":"tok-2","n":1,"retry":1}`))

	s2 := m.TaskFailed("Work", in, ErrHeartbeatTimeout, "quiet", s1.Retries, c, t0, rnd)
	if s2.Kind != StepRetry || !s2.Until.Equal(t0.Add(15*time.Second)) || !reflect.DeepEqual(s2.Retries, []int{2, 0}) {
		t.Fatalf("second failure: %+v, want StepRetry at +15s (5×3) with Retries [2 0]", s2)
	}
	// Another retrier keeps its own count.
	s3 := m.TaskFailed("Work", in, "Job.Crashed", "x", s2.Retries, c, t0, rnd)
	if s3.Kind != StepRetry || !reflect.DeepEqual(s3.Retries, []int{2, 1}) {
		t.Fatalf("third failure: %+v, want StepRetry with Retries [2 1]", s3)
	}
	s4 := m.TaskFailed("Work", in, ErrHeartbeatTimeout, "quiet again", s3.Retries, c, t0, rnd)
	if s4.Kind != StepNext || s4.Next != "Failed" || s4.Caught == nil || s4.Caught.Name != ErrHeartbeatTimeout {
		t.Fatalf("exhausted: %+v, want StepNext to Failed with Caught", s4)
	}
	assertJSON(t, "catch output", s4.Output, json.RawMessage(`{"n":1,"limits":{"timeout":600,"heartbeat":60},"failure":{"Error":"States.HeartbeatTimeout","Cause":"quiet again"}}`))
	end, err := m.Enter("Failed", s4.Output, c, t0)
	if err != nil || end.Kind != StepFail || end.Error != ErrHeartbeatTimeout || end.Cause != "quiet again" {
		t.Fatalf("Fail state: %+v, %v", end, err)
	}
}

func TestWaitThatEndsTheExecution(t *testing.T) {
	t.Parallel()
	m, c := setupStep(t)
	step, err := m.Enter("Pause", json.RawMessage(`{"a":1}`), c, t0)
	if err != nil {
		t.Fatal(err)
	}
	if step.Kind != StepWait || step.Next != "" || !step.Until.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("step %+v, want StepWait until +30s with no Next", step)
	}
}

func TestTaskFailedOnAStateThatIsNotATaskPanics(t *testing.T) {
	t.Parallel()
	m, c := setupStep(t)
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	m.TaskFailed("Pause", json.RawMessage(`{}`), "E", "", nil, c, t0, nil)
}

func TestRetryDelayStaysWithinTheBackoff(t *testing.T) {
	t.Parallel()
	r := retrier{intervalSeconds: 2, backoffRate: 2, maxDelaySeconds: 5, fullJitter: true}
	for seed := range uint64(200) {
		rnd := rand.New(rand.NewPCG(seed, seed))
		for attempt, limit := range []float64{2, 4, 5, 5, 5} {
			d := r.delay(attempt, rnd)
			if d < 0 || d.Seconds() > limit {
				t.Fatalf("seed %d attempt %d: delay %v outside [0, %vs]", seed, attempt, d, limit)
			}
		}
	}
	same1 := r.delay(1, rand.New(rand.NewPCG(9, 9)))
	same2 := r.delay(1, rand.New(rand.NewPCG(9, 9)))
	if same1 != same2 {
		t.Errorf("the same seed gave %v and %v", same1, same2)
	}
	r.fullJitter = false
	if d := r.delay(1, nil); d != 4*time.Second {
		t.Errorf("no jitter: %v, want 4s", d)
	}
}

func TestMathRandomAndUUID(t *testing.T) {
	t.Parallel()
	m, err := Parse([]byte(`{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{
	  "r.$":"States.MathRandom(10, 13)", "s1.$":"States.MathRandom(0, 1000000, 42)", "s2.$":"States.MathRandom(0, 1000000, 42)",
	  "u.$":"States.UUID()", "v.$":"States.UUID()"},"End":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for range 100 {
		step, err := m.Enter("P", json.RawMessage(`{}`), &Context{}, t0)
		if err != nil || step.Kind != StepSucceed {
			t.Fatalf("%+v %v", step, err)
		}
		var out struct {
			R      int
			S1, S2 int
			U, V   string
		}
		if err := json.Unmarshal(step.Output, &out); err != nil {
			t.Fatal(err)
		}
		if out.R < 10 || out.R >= 13 {
			t.Fatalf("MathRandom(10, 13) = %d", out.R)
		}
		seen[string(rune('0'+out.R-10))] = true
		if out.S1 != out.S2 {
			t.Fatalf("the same seed gave %d and %d", out.S1, out.S2)
		}
		if !uuidRE.MatchString(out.U) || out.U == out.V {
			t.Fatalf("UUIDs %q %q", out.U, out.V)
		}
	}
	if len(seen) != 3 {
		t.Errorf("MathRandom(10, 13) gave only %v in 100 draws", seen)
	}
}

func TestRunTaskErrors(t *testing.T) {
	t.Parallel()
	def := []byte(`{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:1:function:f","TimeoutSeconds":30,"End":true}}}`)
	m, err := Parse(def)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name            string
		invoke          func(ctx context.Context, t *Task, token string) (json.RawMessage, error)
		errName, reason string
	}{
		{"a plain error is States.TaskFailed", func(context.Context, *Task, string) (json.RawMessage, error) {
			return nil, errors.New("exit status 1")
		}, ErrTaskFailed, "exit status 1"},
		{"a wrapped *TaskError keeps its name", func(context.Context, *Task, string) (json.RawMessage, error) {
			return nil, errors.Join(errors.New("ctx"), &TaskError{Name: "Job.Bad", Cause: "bad"})
		}, "Job.Bad", "bad"},
		{"the task deadline is States.Timeout", func(ctx context.Context, _ *Task, _ string) (json.RawMessage, error) {
			if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 30*time.Second || time.Until(dl) < 29*time.Second {
				return nil, errors.New("no 30 s deadline on the task's context")
			}
			return nil, context.DeadlineExceeded
		}, ErrTimeout, "the task did not finish within 30 seconds"},
		{"a result that is not JSON is States.TaskFailed", func(context.Context, *Task, string) (json.RawMessage, error) {
			return json.RawMessage(`{`), nil
		}, ErrTaskFailed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res, err := Run(context.Background(), m, json.RawMessage(`{}`), RunOptions{Invoke: c.invoke})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != StatusFailed || res.Error != c.errName || (c.reason != "" && res.Cause != c.reason) {
				t.Errorf("result %s %s %q, want FAILED %s %q", res.Status, res.Error, res.Cause, c.errName, c.reason)
			}
		})
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	m, err := Parse([]byte(`{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":3600,"End":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Run(ctx, m, nil, RunOptions{Invoke: func(context.Context, *Task, string) (json.RawMessage, error) { return nil, nil }})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if _, err := Run(context.Background(), m, nil, RunOptions{}); err == nil {
		t.Error("Run without Invoke: no error")
	}
}

// TestConcurrentRuns shares one StateMachine between executions, as the
// engine does; run it with -race.
func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	def := repoDefinition(t, "longrun.asl.json")
	m, err := Parse(def)
	if err != nil {
		t.Fatal(err)
	}
	invoke, err := LoadMock([]byte(`{"Work":[{"Return":{"ok":true}}],"Finalize":[{"Return":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	in := json.RawMessage(`{"executionId":"e","executionArn":"a","input":{},"limits":{"timeoutSeconds":60,"heartbeatSeconds":10}}`)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			res, err := Run(context.Background(), m, in, RunOptions{Invoke: invoke})
			if err == nil && res.Status != StatusSucceeded {
				err = errors.New(res.Status + " " + res.Error + " " + res.Cause)
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestStepRoundTripsThroughJSON: the engine persists Steps.
func TestStepRoundTripsThroughJSON(t *testing.T) {
	t.Parallel()
	m, c := setupStep(t)
	in := json.RawMessage(`{"n":1,"limits":{"timeout":600,"heartbeat":60}}`)
	step := m.TaskFailed("Work", in, ErrHeartbeatTimeout, "quiet", nil, c, t0, rand.New(rand.NewPCG(1, 1)))
	b, err := json.Marshal(step)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"kind":"Retry"`) {
		t.Errorf("kind is not written by name: %s", b)
	}
	var back Step
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Kind != StepRetry || !back.Until.Equal(step.Until) || !reflect.DeepEqual(back.Retries, step.Retries) || back.Task.TimeoutSeconds != 600 {
		t.Errorf("round trip: %+v, want %+v", back, step)
	}
	if err := json.Unmarshal([]byte(`{"kind":"Sideways"}`), &back); err == nil {
		t.Error("an unknown kind was accepted")
	}
}
