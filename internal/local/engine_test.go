package local

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/longrun/longrun"
)

func jsonEqual(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %s is not JSON: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: want %s is not JSON: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func count(types []string, typ string) int {
	n := 0
	for _, t := range types {
		if t == typ {
			n++
		}
	}
	return n
}

// waitEvents waits for n history events of typ (e.g. "TaskTimedOut:Work").
func (f *fixture) waitEvents(arn, typ string, n int) {
	f.t.Helper()
	f.waitFor(typ, func() bool { return count(historyTypes(f.t, f.e, arn), typ) >= n })
}

func TestFlows(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		input   string
		advance []time.Duration // the clock moves by each, in turn; the execution runs until the last
		status  longrun.Status
		output  string
		errName string
		cause   string
		history []string
	}{
		{
			name: "pass choice succeed", input: `{"kind":"go","extra":1}`,
			status: longrun.StatusSucceeded, output: `{"kind":"go","started":"flow-1"}`,
			history: []string{"ExecutionStarted", "PassStateEntered:Prepare", "PassStateExited:Prepare",
				"ChoiceStateEntered:Route", "ChoiceStateExited:Route", "SucceedStateEntered:Done", "SucceedStateExited:Done", "ExecutionSucceeded"},
		},
		{
			name: "fail state", input: `{"kind":"fail"}`,
			status: longrun.StatusFailed, errName: "Flow.Broken", cause: "asked to fail",
			history: []string{"ExecutionStarted", "PassStateEntered:Prepare", "PassStateExited:Prepare",
				"ChoiceStateEntered:Route", "ChoiceStateExited:Route", "FailStateEntered:Broken", "ExecutionFailed"},
		},
		{
			name: "wait", input: `{"kind":"wait"}`, advance: []time.Duration{9 * time.Second, time.Second},
			status: longrun.StatusSucceeded, output: `{"kind":"wait","started":"flow-1"}`,
			history: []string{"ExecutionStarted", "PassStateEntered:Prepare", "PassStateExited:Prepare",
				"ChoiceStateEntered:Route", "ChoiceStateExited:Route", "WaitStateEntered:Pause", "WaitStateExited:Pause",
				"SucceedStateEntered:Done", "SucceedStateExited:Done", "ExecutionSucceeded"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			arn, err := f.e.Start(f.ctx, "flow", "flow-1", json.RawMessage(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range tc.advance {
				f.waitState(arn, "Pause")
				f.clock.Advance(d)
				f.sync()
				if i < len(tc.advance)-1 {
					if d := f.describe(arn); d.Status != longrun.StatusRunning {
						t.Fatalf("after %s: status %s, want RUNNING", tc.advance[:i+1], d.Status)
					}
				}
			}
			d := f.waitEnd(arn)
			if d.Status != tc.status || d.Error != tc.errName || d.Cause != tc.cause {
				t.Errorf("ended %s %q %q, want %s %q %q", d.Status, d.Error, d.Cause, tc.status, tc.errName, tc.cause)
			}
			if tc.output != "" {
				jsonEqual(t, "output", d.Output, tc.output)
			}
			if got := historyTypes(t, f.e, arn); !slices.Equal(got, tc.history) {
				t.Errorf("history\n got %v\nwant %v", got, tc.history)
			}
		})
	}
}

// TestJobs runs the real longrun.asl.json with a worker driven by the test.
func TestJobs(t *testing.T) {
	t.Parallel()
	limits := longrun.Limits{TimeoutSeconds: 100, HeartbeatSeconds: 10}
	type want struct {
		status  longrun.Status
		output  string
		errName string
		cause   string
		// finalize is the status notify is asked to record; "" for none.
		finalize longrun.Status
		// event is the status-change event expected; "" for none.
		event longrun.Status
		// recorded is the error notify is given to record when it is not
		// the execution's (a Fail state may not throw a States.* name).
		recorded string
	}
	cases := []struct {
		name      string
		opts      []option
		heartbeat bool // run testdata/heartbeat.asl.json, with a Work HeartbeatSeconds
		limits    longrun.Limits
		worker    func(t *testing.T, f *fixture, arn string)
		want      want
	}{
		{
			name: "success", limits: limits,
			worker: func(t *testing.T, f *fixture, arn string) {
				tm, _ := f.takeTask()
				if tm.ExecutionARN != arn || tm.ExecutionID != "job-1" || tm.TaskToken == "" {
					t.Errorf("task message %+v", tm)
				}
				jsonEqual(t, "task input", tm.Input, `{"seconds":3}`)
				if err := f.e.SendTaskHeartbeat(f.ctx, tm.TaskToken); err != nil {
					t.Fatal(err)
				}
				if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{"msg":"done"}`)); err != nil {
					t.Fatal(err)
				}
				if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{}`)); !longrun.IsCode(err, longrun.ETASKGONE) {
					t.Errorf("second SendTaskSuccess = %v, want ETASKGONE", err)
				}
			},
			want: want{status: longrun.StatusSucceeded, output: `{"msg":"done"}`, finalize: longrun.StatusSucceeded},
		},
		{
			name: "success sent after commit", opts: []option{withPlainQueue()}, limits: limits,
			worker: func(t *testing.T, f *fixture, arn string) {
				tm, _ := f.takeTask()
				if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{"msg":"done"}`)); err != nil {
					t.Fatal(err)
				}
			},
			want: want{status: longrun.StatusSucceeded, output: `{"msg":"done"}`, finalize: longrun.StatusSucceeded},
		},
		{
			name: "failure caught", limits: limits,
			worker: func(t *testing.T, f *fixture, arn string) {
				tm, _ := f.takeTask()
				if err := f.e.SendTaskFailure(f.ctx, tm.TaskToken, "Job.Error", "boom"); err != nil {
					t.Fatal(err)
				}
			},
			want: want{status: longrun.StatusFailed, errName: "Job.Error", cause: "boom", finalize: longrun.StatusFailed, event: longrun.StatusFailed},
		},
		{
			name: "heartbeat timeout retried then caught", heartbeat: true, limits: limits,
			worker: func(t *testing.T, f *fixture, arn string) {
				var tokens []string
				start := f.clock.Now()
				for attempt := 1; attempt <= 3; attempt++ {
					tm, _ := f.takeTask()
					tokens = append(tokens, tm.TaskToken)
					f.clock.Advance(5 * time.Second)
					if err := f.e.SendTaskHeartbeat(f.ctx, tm.TaskToken); err != nil {
						t.Fatalf("attempt %d: heartbeat: %v", attempt, err)
					}
					f.clock.Advance(9 * time.Second) // 14 s in, 9 s after the heartbeat: still alive
					f.sync()
					if n := count(historyTypes(t, f.e, arn), "TaskTimedOut:Work"); n != attempt-1 {
						t.Fatalf("attempt %d timed out 9 s after a heartbeat", attempt)
					}
					f.clock.Advance(time.Second)
					f.waitEvents(arn, "TaskTimedOut:Work", attempt)
					if err := f.e.SendTaskHeartbeat(f.ctx, tm.TaskToken); !longrun.IsCode(err, longrun.ETASKGONE) {
						t.Fatalf("attempt %d: heartbeat after the timeout = %v, want ETASKGONE", attempt, err)
					}
					if attempt < 3 {
						f.clock.Advance(time.Duration(5*attempt) * time.Second) // the backoff's longest full-jitter delay
					}
				}
				if len(slices.Compact(slices.Clone(tokens))) != 3 {
					t.Errorf("tokens %v, want a new one per attempt", tokens)
				}
				// The heartbeat at 5 s moved the first timeout from 10 s to 15 s.
				h, err := f.e.History(f.ctx, arn)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range h {
					if ev.Type == "TaskTimedOut" {
						if got := ev.Timestamp.Sub(start); got != 15*time.Second {
							t.Errorf("first heartbeat timeout %s after the start, want 15s", got)
						}
						break
					}
				}
			},
			want: want{status: longrun.StatusFailed, errName: "States.HeartbeatTimeout", cause: "no heartbeat within 10 seconds",
				finalize: longrun.StatusFailed, event: longrun.StatusFailed},
		},
		{
			// The real definition has no Work HeartbeatSeconds: a message
			// that waits 600 heartbeats in the queue is still a live task
			// (docs/state-machine.md, Liveness).
			name: "a backlog never times the task out", limits: longrun.Limits{TimeoutSeconds: 3600, HeartbeatSeconds: 1},
			worker: func(t *testing.T, f *fixture, arn string) {
				f.clock.Advance(10 * time.Minute)
				f.sync()
				if got := historyTypes(t, f.e, arn); count(got, "TaskTimedOut:Work") != 0 {
					t.Fatalf("history after the wait: %v", got)
				}
				tm, _ := f.takeTask()
				if err := f.e.SendTaskHeartbeat(f.ctx, tm.TaskToken); err != nil {
					t.Fatalf("heartbeat on receipt: %v", err)
				}
				f.clock.Advance(10 * time.Minute)
				if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{"msg":"waited"}`)); err != nil {
					t.Fatal(err)
				}
			},
			want: want{status: longrun.StatusSucceeded, output: `{"msg":"waited"}`, finalize: longrun.StatusSucceeded},
		},
		{
			name: "task timeout caught", limits: longrun.Limits{TimeoutSeconds: 30, HeartbeatSeconds: 20},
			worker: func(t *testing.T, f *fixture, arn string) {
				tm, _ := f.takeTask()
				for range 2 {
					f.clock.Advance(15 * time.Second)
					if err := f.e.SendTaskHeartbeat(f.ctx, tm.TaskToken); err != nil && !longrun.IsCode(err, longrun.ETASKGONE) {
						t.Fatal(err)
					}
				}
			},
			want: want{status: longrun.StatusFailed, errName: "Job.Timeout", recorded: "States.Timeout", cause: "the task did not finish within 30 seconds",
				finalize: longrun.StatusFailed, event: longrun.StatusFailed},
		},
		{
			name: "stopped", limits: limits,
			worker: func(t *testing.T, f *fixture, arn string) {
				tm, _ := f.takeTask()
				if err := f.e.StopExecution(f.ctx, arn, "User.Stop", "no longer needed"); err != nil {
					t.Fatal(err)
				}
				if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{}`)); !longrun.IsCode(err, longrun.ETASKGONE) {
					t.Errorf("SendTaskSuccess after stop = %v, want ETASKGONE", err)
				}
				if err := f.e.StopExecution(f.ctx, arn, "", ""); !longrun.IsCode(err, longrun.ENOTRUNNING) {
					t.Errorf("second stop = %v, want ENOTRUNNING", err)
				}
			},
			want: want{status: longrun.StatusAborted, errName: "User.Stop", cause: "no longer needed", event: longrun.StatusAborted},
		},
		{
			name: "finalize retried", limits: limits,
			worker: func(t *testing.T, f *fixture, arn string) {
				f.notify.set(func(r *recorder) { r.fail = 2 })
				tm, _ := f.takeTask()
				if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{"msg":"late"}`)); err != nil {
					t.Fatal(err)
				}
				f.waitEvents(arn, "TaskFailed:Finalize", 1)
				f.clock.Advance(2 * time.Second)
				f.waitEvents(arn, "TaskFailed:Finalize", 2)
				f.clock.Advance(4 * time.Second)
			},
			want: want{status: longrun.StatusSucceeded, output: `{"msg":"late"}`, finalize: longrun.StatusSucceeded},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, tc.opts...)
			start := f.startJob
			if tc.heartbeat {
				start = f.startHeartbeatJob
			}
			arn := start("job-1", `{"seconds":3}`, tc.limits)
			tc.worker(t, f, arn)
			d := f.waitEnd(arn)
			w := tc.want
			if d.Status != w.status || d.Error != w.errName || d.Cause != w.cause {
				t.Errorf("ended %s %q %q, want %s %q %q", d.Status, d.Error, d.Cause, w.status, w.errName, w.cause)
			}
			if w.output != "" {
				jsonEqual(t, "output", d.Output, w.output)
			}
			var finalized []longrun.NotifyRequest
			for _, p := range f.notify.payloads() {
				var req longrun.NotifyRequest
				if err := json.Unmarshal(p, &req); err != nil {
					t.Fatal(err)
				}
				finalized = append(finalized, req)
			}
			if w.finalize == "" {
				if len(finalized) > 0 {
					t.Errorf("notify called with %+v, want no call", finalized)
				}
			} else {
				last := finalized[len(finalized)-1]
				if last.Action != longrun.NotifyFinalize || last.ExecutionID != "job-1" || last.Status != w.finalize {
					t.Errorf("notify got %+v, want finalize %s of job-1", last, w.finalize)
				}
				recorded := cmp.Or(w.recorded, w.errName)
				if w.finalize == longrun.StatusFailed && (last.Failure == nil || last.Failure.Error != recorded || last.Failure.Cause != w.cause) {
					t.Errorf("finalize failure %+v, want %s: %s", last.Failure, recorded, w.cause)
				}
				if w.finalize == longrun.StatusSucceeded {
					jsonEqual(t, "finalize output", last.Output, w.output)
				}
			}
			if w.event != "" {
				f.waitFor("the status-change event", func() bool { return len(f.events.payloads()) > 0 })
				checkStatusEvent(t, f.events.payloads()[0], arn, d)
			} else if got := f.events.payloads(); len(got) > 0 {
				t.Errorf("status events %s, want none", got)
			}
			if n := f.queued(); n != 0 {
				t.Errorf("%d task messages left in the queue", n)
			}
		})
	}
}

func checkStatusEvent(t *testing.T, body json.RawMessage, arn string, d *Description) {
	t.Helper()
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DetailType != StatusDetailType || ev.Source != "aws.states" || ev.Region != "us-east-1" ||
		ev.AccountID != "000000000000" || ev.ID == "" || !slices.Equal(ev.Resources, []string{arn}) {
		t.Errorf("event envelope %+v", ev)
	}
	var detail map[string]any
	if err := json.Unmarshal(ev.Detail, &detail); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"executionArn": arn, "stateMachineArn": d.StateMachineARN, "name": d.Name, "status": string(d.Status),
		"startDate": float64(d.StartDate.UnixMilli()), "stopDate": float64(d.StopDate.UnixMilli()),
		"input": string(d.Input), "output": nil, "error": d.Error, "cause": d.Cause,
		"inputDetails": map[string]any{"included": true}, "outputDetails": map[string]any{"included": true},
	}
	if !reflect.DeepEqual(detail, want) {
		t.Errorf("event detail\n got %v\nwant %v", detail, want)
	}
}

func TestJobHistory(t *testing.T) {
	t.Parallel()
	f := setup(t)
	arn := f.startJob("job-1", `{}`, longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30})
	tm, msg := f.takeTask()
	if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	f.waitEnd(arn)
	want := []string{"ExecutionStarted", "ChoiceStateEntered:Kind", "ChoiceStateExited:Kind", "TaskStateEntered:Work", "TaskScheduled:Work", "TaskStarted:Work", "TaskSubmitted:Work",
		"TaskSucceeded:Work", "TaskStateExited:Work", "TaskStateEntered:Finalize", "TaskScheduled:Finalize", "TaskStarted:Finalize",
		"TaskSucceeded:Finalize", "TaskStateExited:Finalize", "ExecutionSucceeded"}
	got := historyTypes(t, f.e, arn)
	if !slices.Equal(got, want) {
		t.Errorf("history\n got %v\nwant %v", got, want)
	}
	at := func(typ string) int { return max(slices.Index(got, typ), 0) }
	h, err := f.e.History(f.ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range h {
		if ev.ID != int64(i+1) || ev.Timestamp.IsZero() {
			t.Errorf("event %d: id %d at %s", i, ev.ID, ev.Timestamp)
		}
	}
	var scheduled struct {
		Resource   string
		Pattern    string
		Parameters struct {
			QueueURL    string `json:"QueueUrl"`
			MessageBody longrun.TaskMessage
		}
		TimeoutInSeconds, HeartbeatInSeconds int
	}
	if err := json.Unmarshal(h[at("TaskScheduled:Work")].Detail, &scheduled); err != nil {
		t.Fatal(err)
	}
	if scheduled.Resource != resourceSendMessage || scheduled.Pattern != "WaitForTaskToken" || scheduled.Parameters.QueueURL != testQueueURL ||
		scheduled.Parameters.MessageBody.TaskToken != tm.TaskToken || scheduled.TimeoutInSeconds != 60 || scheduled.HeartbeatInSeconds != 0 {
		t.Errorf("TaskScheduled detail %s", h[at("TaskScheduled:Work")].Detail)
	}
	var submitted struct {
		Output struct{ MessageID, MD5OfMessageBody string }
	}
	if err := json.Unmarshal(h[at("TaskSubmitted:Work")].Detail, &submitted); err != nil {
		t.Fatal(err)
	}
	if submitted.Output.MessageID != msg.ID || len(submitted.Output.MD5OfMessageBody) != 32 {
		t.Errorf("TaskSubmitted detail %s", h[at("TaskSubmitted:Work")].Detail)
	}
	var finalized struct{ Output json.RawMessage }
	if err := json.Unmarshal(h[at("TaskSucceeded:Finalize")].Detail, &finalized); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, "Finalize result", finalized.Output, `{"ExecutedVersion":"$LATEST","Payload":{},"StatusCode":200}`)
	if _, err := f.e.History(f.ctx, arn+"-unknown"); !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Errorf("History of an unknown execution = %v, want ENOTFOUND", err)
	}
}

func TestExecutionTimeout(t *testing.T) {
	t.Parallel()
	f := setup(t)
	arn, err := f.e.Start(f.ctx, "timeout", "t-1", json.RawMessage(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	f.waitState(arn, "Nap")
	f.clock.Advance(29 * time.Second)
	f.sync()
	if d := f.describe(arn); d.Status != longrun.StatusRunning {
		t.Fatalf("status %s after 29 s, want RUNNING", d.Status)
	}
	f.clock.Advance(time.Second)
	d := f.waitEnd(arn)
	if d.Status != longrun.StatusTimedOut || d.Error != "States.Timeout" {
		t.Errorf("ended %s %q, want TIMED_OUT States.Timeout", d.Status, d.Error)
	}
	if got := historyTypes(t, f.e, arn); !slices.Equal(got, []string{"ExecutionStarted", "WaitStateEntered:Nap", "ExecutionTimedOut"}) {
		t.Errorf("history %v", got)
	}
	f.waitFor("the status-change event", func() bool { return len(f.events.payloads()) > 0 })
	checkStatusEvent(t, f.events.payloads()[0], arn, d)
}

func TestStartExecutionIdempotent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	limits := longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30}
	in := longrun.StateInput{ExecutionID: "job-1", ExecutionARN: f.e.ExecutionARN("job-1"), Input: json.RawMessage(`{"n":1}`), Limits: limits}
	for range 3 {
		if err := f.e.StartExecution(f.ctx, in); err != nil {
			t.Fatalf("StartExecution of a running execution with the same input: %v", err)
		}
	}
	other := in
	other.Input = json.RawMessage(`{"n":2}`)
	if err := f.e.StartExecution(f.ctx, other); !longrun.IsCode(err, longrun.EDUPLICATE) {
		t.Errorf("StartExecution with another input = %v, want EDUPLICATE", err)
	}
	tm, _ := f.takeTask()
	if n := f.queued(); n != 0 {
		t.Errorf("%d more task messages: the repeated starts ran again", n)
	}
	if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	f.waitEnd(in.ExecutionARN)
	if err := f.e.StartExecution(f.ctx, in); !longrun.IsCode(err, longrun.EDUPLICATE) {
		t.Errorf("StartExecution of an ended execution = %v, want EDUPLICATE", err)
	}
	if got := count(historyTypes(t, f.e, in.ExecutionARN), "ExecutionStarted"); got != 1 {
		t.Errorf("%d ExecutionStarted events, want 1", got)
	}
	if err := f.e.StopExecution(f.ctx, f.e.ExecutionARN("nope"), "", ""); !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Errorf("stop of an unknown execution = %v, want ENOTFOUND", err)
	}
}

type customError struct{ msg string }

func (e customError) Error() string { return e.msg }

func TestLambdaInvoke(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		answer  func(calls int) (json.RawMessage, error)
		advance []time.Duration
		output  string
	}{
		{
			name:   "result",
			answer: func(int) (json.RawMessage, error) { return json.RawMessage(`{"n":1}`), nil },
			output: `{"echoed":{"n":1},"version":"$LATEST","code":200}`,
		},
		{
			name:   "error",
			answer: func(int) (json.RawMessage, error) { return nil, errors.New("boom") },
			output: `{"x":1,"failure":{"Error":"errorString","Cause":"{\"errorMessage\":\"boom\",\"errorType\":\"errorString\"}"}}`,
		},
		{
			name:   "error value type",
			answer: func(int) (json.RawMessage, error) { return nil, customError{"bad input"} },
			output: `{"x":1,"failure":{"Error":"customError","Cause":"{\"errorMessage\":\"bad input\",\"errorType\":\"customError\"}"}}`,
		},
		{
			name: "invoke response error",
			answer: func(int) (json.RawMessage, error) {
				return nil, messages.InvokeResponse_Error{Type: "Echo.Refused", Message: "no"}
			},
			output: `{"x":1,"failure":{"Error":"Echo.Refused","Cause":"{\"errorMessage\":\"no\",\"errorType\":\"Echo.Refused\"}"}}`,
		},
		{
			name:   "panic",
			answer: func(int) (json.RawMessage, error) { panic(errors.New("kaboom")) },
			output: `{"x":1,"failure":{"Error":"errorString","Cause":"{\"errorMessage\":\"kaboom\",\"errorType\":\"errorString\"}"}}`,
		},
		{
			name: "retried",
			answer: func(calls int) (json.RawMessage, error) {
				if calls < 3 {
					return nil, messages.InvokeResponse_Error{Type: "Echo.Flaky", Message: "try again"}
				}
				return json.RawMessage(`"third time"`), nil
			},
			advance: []time.Duration{3 * time.Second, 3 * time.Second},
			output:  `{"echoed":"third time","version":"$LATEST","code":200}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			calls := 0
			f.echo.set(func(r *recorder) {
				r.answer = func(json.RawMessage) (json.RawMessage, error) { calls++; return tc.answer(calls) }
			})
			arn, err := f.e.Start(f.ctx, "lambda", "l-1", json.RawMessage(`{"x":1}`))
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range tc.advance {
				f.waitEvents(arn, "TaskFailed:Call", i+1)
				f.clock.Advance(d)
			}
			d := f.waitEnd(arn)
			if d.Status != longrun.StatusSucceeded {
				t.Fatalf("ended %s %s %s", d.Status, d.Error, d.Cause)
			}
			jsonEqual(t, "output", d.Output, tc.output)
			jsonEqual(t, "payload", f.echo.payloads()[0], `{"in":{"x":1}}`)
		})
	}
}

func TestRedeliver(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if err := f.e.Redeliver(f.ctx, "job-9", 0); err != nil {
		t.Fatal(err)
	}
	f.waitFor("the deliver machine to run notify", func() bool { return len(f.notify.payloads()) > 0 })
	jsonEqual(t, "notify payload", f.notify.payloads()[0], `{"action":"deliver","executionId":"job-9"}`)

	// The same round again, once its loop has ended: ENOTRUNNING, and nothing
	// starts (the caller moves to the next round). The next round is a loop
	// of its own.
	f.waitEnd(executionARN(f.e.machines["deliver"], longrun.DeliverName("job-9", 0)))
	if err := f.e.Redeliver(f.ctx, "job-9", 0); !longrun.IsCode(err, longrun.ENOTRUNNING) {
		t.Fatalf("a round whose loop ended: %v, want ENOTRUNNING", err)
	}
	f.sync()
	if n := len(f.notify.payloads()); n != 1 {
		t.Fatalf("restarting round 0 ran notify again: %d calls", n)
	}
	if err := f.e.Redeliver(f.ctx, "job-9", 1); err != nil {
		t.Fatal(err)
	}
	f.waitFor("round 1 to run notify", func() bool { return len(f.notify.payloads()) == 2 })
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	f := setup(t)
	cases := []struct {
		name   string
		cfg    func(c *Config)
		errHas []string
	}{
		{
			name: "unsupported resource",
			cfg: func(c *Config) {
				c.Machines = []Machine{{Name: "bad", ARN: testRegionARN + "bad", Definition: readDefinition(t, "testdata/unsupported.asl.json")}}
				c.Main, c.Deliver, c.StatusRules = "", "", nil
			},
			errHas: []string{`state "Save"`, "arn:aws:states:::dynamodb:putItem"},
		},
		{
			// A fixed QueueUrl is checked at load; a "QueueUrl.$" (Work's)
			// when its task starts (TestQueueURLFromTheState).
			name:   "unknown queue",
			cfg:    func(c *Config) { c.Queues = nil },
			errHas: []string{`state "Send"`, "QueueUrl", testQueueURL},
		},
		{
			name:   "unknown function",
			cfg:    func(c *Config) { delete(c.Functions, "notify") },
			errHas: []string{`state "Finalize"`, "FunctionName", testNotifyARN},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, f.db, f.queue, map[string]Function{"notify": f.notify.fn, "events": f.events.fn, "echo": f.echo.fn})
			tc.cfg(&cfg)
			_, err := New(t.Context(), cfg)
			if err == nil {
				t.Fatal("New accepted it")
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %s", err, s)
				}
			}
		})
	}
}

// TestStatusEventOutbox: an event its function refuses stays in the outbox
// and is retried with backoff, also by the engine after a restart, until
// the function accepts it; then the row is gone.
func TestStatusEventOutbox(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.events.set(func(r *recorder) { r.fail = 2 })
	arn := f.startJob("job-1", `{}`, longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30})
	f.takeTask()
	if err := f.e.StopExecution(f.ctx, arn, "User.Stop", "bye"); err != nil {
		t.Fatal(err)
	}
	f.waitFor("the second attempt", func() bool {
		// The backoff starts when the attempt has failed; moving the clock
		// on each look lets it end whenever it began.
		f.clock.Advance(time.Second)
		return len(f.events.payloads()) == 2
	})
	if n := f.outbox(); n != 1 {
		t.Fatalf("%d events in the outbox after two refusals, want 1", n)
	}
	f.crash()
	f.waitFor("the attempt after the restart", func() bool { return len(f.events.payloads()) == 3 })
	f.waitFor("the outbox to empty", func() bool { return f.outbox() == 0 })
	got := f.events.payloads()
	if string(got[0]) != string(got[2]) {
		t.Errorf("the retried event differs:\n%s\n%s", got[0], got[2])
	}
	checkStatusEvent(t, got[2], arn, f.describe(arn))
}

func (f *fixture) outbox() int {
	f.t.Helper()
	var n int
	if err := f.db.Read(f.ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(f.ctx, `SELECT count(*) FROM local_outbox`).Scan(&n)
	}); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// TestLogsTransitions: one line per transition, with the execution id, the
// states it moves between and its status.
func TestLogsTransitions(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	f := setup(t, withLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	arn, err := f.e.Start(f.ctx, "flow", "flow-1", json.RawMessage(`{"kind":"go"}`))
	if err != nil {
		t.Fatal(err)
	}
	f.waitEnd(arn)
	var lines []string
	f.waitFor("four log lines", func() bool { // logged just after the commit
		lines = nil
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, "msg=transition") {
				lines = append(lines, l[strings.Index(l, "msg="):])
			}
		}
		return len(lines) >= 4
	})
	want := []string{
		"msg=transition execution_id=flow-1 machine=flow from=\"\" to=Prepare status=RUNNING",
		"msg=transition execution_id=flow-1 machine=flow from=Prepare to=Route status=RUNNING",
		"msg=transition execution_id=flow-1 machine=flow from=Route to=Done status=RUNNING",
		"msg=transition execution_id=flow-1 machine=flow from=Done to=SUCCEEDED status=SUCCEEDED",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("log lines\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSendMessage: sqs:sendMessage without a token sends MessageBody as
// JSON text and continues with {"MessageId","MD5OfMessageBody"}; with the
// local queue the message and the step commit together, before and after a
// restart alike.
func TestSendMessage(t *testing.T) {
	t.Parallel()
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain queue %v", plain), func(t *testing.T) {
			t.Parallel()
			var opts []option
			if plain {
				opts = append(opts, withPlainQueue())
			}
			f := setup(t, opts...)
			arn, err := f.e.Start(f.ctx, "send", "s-1", json.RawMessage(`{"name":"world"}`))
			if err != nil {
				t.Fatal(err)
			}
			d := f.waitEnd(arn)
			var out struct {
				Name string `json:"name"`
				Sent struct {
					MessageID string `json:"MessageId"`
					MD5       string `json:"MD5OfMessageBody"`
				} `json:"sent"`
			}
			if err := json.Unmarshal(d.Output, &out); err != nil {
				t.Fatal(err)
			}
			body := `{"from":"s-1","hello":"world"}`
			sum := md5.Sum([]byte(body))
			if out.Name != "world" || out.Sent.MessageID == "" || out.Sent.MD5 != hex.EncodeToString(sum[:]) {
				t.Errorf("output %s", d.Output)
			}
			msgs, err := f.queue.Receive(f.ctx, 10, 0, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 || msgs[0].Body != body {
				t.Fatalf("queue holds %+v, want one message %s", msgs, body)
			}
			if !plain && msgs[0].ID != out.Sent.MessageID {
				t.Errorf("MessageId %s, the queue's id %s", out.Sent.MessageID, msgs[0].ID)
			}
			want := []string{"ExecutionStarted", "TaskStateEntered:Send", "TaskScheduled:Send", "TaskStarted:Send", "TaskSucceeded:Send",
				"TaskStateExited:Send", "PassStateEntered:Done", "PassStateExited:Done", "ExecutionSucceeded"}
			if got := historyTypes(t, f.e, arn); !slices.Equal(got, want) {
				t.Errorf("history\n got %v\nwant %v", got, want)
			}
		})
	}
}

// Run returns only after the goroutines it started (here, an invoke in
// flight) have ended: nothing the engine started outlives it, and the DB can
// be closed right after.
func TestRunWaitsForItsInvokes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	calling := make(chan struct{}, 1)
	f.echo.set(func(r *recorder) {
		r.block, r.calling = make(chan struct{}), calling // held until ctx ends
	})
	if _, err := f.e.Start(f.ctx, "lambda", "l-wait", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-calling:
	case <-time.After(30 * time.Second):
		t.Fatal("the invoke never started")
	}
	f.halt()
	if f.echo.ended.Load() != 1 {
		t.Fatal("Run returned while an invoke it started was still running")
	}
}

// TestQueueURLFromTheState: the Work state's "QueueUrl.$" picks the queue
// per execution, as the start function routes it; an execution of an older
// start function without one goes to the jobs queue; a URL that names no
// queue fails the task with SQS's error, which the definition finalizes.
func TestQueueURLFromTheState(t *testing.T) {
	t.Parallel()
	limits := longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30}
	t.Run("no queueUrl: the jobs queue", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		in := longrun.StateInput{ExecutionID: "old-1", ExecutionARN: f.e.ExecutionARN("old-1"), Input: json.RawMessage(`{}`), Limits: limits}
		if err := f.e.StartExecution(f.ctx, in); err != nil {
			t.Fatal(err)
		}
		tm, _ := f.takeTask()
		if tm.ExecutionID != "old-1" {
			t.Fatalf("task %+v", tm)
		}
		if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
		if d := f.waitEnd(in.ExecutionARN); d.Status != longrun.StatusSucceeded {
			t.Fatalf("status %s %s %s", d.Status, d.Error, d.Cause)
		}
		got := historyTypes(t, f.e, in.ExecutionARN)
		for _, state := range []string{"PassStateEntered:DefaultQueue", "PassStateEntered:JobLimitAsBackstop"} {
			if !slices.Contains(got, state) {
				t.Errorf("history %v lacks %s", got, state)
			}
		}
	})
	t.Run("a queue the engine does not have", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		in := longrun.StateInput{ExecutionID: "lost-1", ExecutionARN: f.e.ExecutionARN("lost-1"), Input: json.RawMessage(`{}`), Limits: limits,
			BackstopSeconds: 60, QueueURL: "http://localhost:4566/000000000000/nowhere"}
		if err := f.e.StartExecution(f.ctx, in); err != nil {
			t.Fatal(err)
		}
		d := f.waitEnd(in.ExecutionARN)
		if d.Status != longrun.StatusFailed || d.Error != errNoQueue || !strings.Contains(d.Cause, "nowhere") {
			t.Fatalf("status %s error %q cause %q, want FAILED with %s naming the queue", d.Status, d.Error, d.Cause, errNoQueue)
		}
	})
}
