package sfnengine

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/longrun/longrun"
)

// fake is an API whose answers the test sets.
type fake struct {
	API
	err      error // returned by every call but DescribeExecution
	describe []*sfn.DescribeExecutionOutput
	failure  *sfn.SendTaskFailureInput
	stop     *sfn.StopExecutionInput
	started  []*sfn.StartExecutionInput
}

func (f *fake) StartExecution(_ context.Context, in *sfn.StartExecutionInput, _ ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error) {
	f.started = append(f.started, in)
	return &sfn.StartExecutionOutput{}, f.err
}

func (f *fake) DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	if len(f.describe) == 0 {
		return nil, &types.ExecutionDoesNotExist{Message: aws.String("Execution does not exist")}
	}
	out := f.describe[0]
	if len(f.describe) > 1 {
		f.describe = f.describe[1:]
	}
	return out, nil
}

func (f *fake) StopExecution(_ context.Context, in *sfn.StopExecutionInput, _ ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error) {
	f.stop = in
	return &sfn.StopExecutionOutput{}, f.err
}

func (f *fake) SendTaskSuccess(context.Context, *sfn.SendTaskSuccessInput, ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error) {
	return &sfn.SendTaskSuccessOutput{}, f.err
}

func (f *fake) SendTaskFailure(_ context.Context, in *sfn.SendTaskFailureInput, _ ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error) {
	f.failure = in
	return &sfn.SendTaskFailureOutput{}, f.err
}

func (f *fake) SendTaskHeartbeat(context.Context, *sfn.SendTaskHeartbeatInput, ...func(*sfn.Options)) (*sfn.SendTaskHeartbeatOutput, error) {
	return &sfn.SendTaskHeartbeatOutput{}, f.err
}

const smARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:longrun-StateMachine-AbC123"

func TestExecutionARN(t *testing.T) {
	t.Parallel()
	e := New(&fake{}, Config{StateMachineARN: smARN})
	want := "arn:aws:states:eu-west-1:123456789012:execution:longrun-StateMachine-AbC123:0193a1b2-0000-7000-8000-000000000001"
	if got := e.ExecutionARN("0193a1b2-0000-7000-8000-000000000001"); got != want {
		t.Errorf("ExecutionARN = %s, want %s", got, want)
	}
}

func TestTaskErrors(t *testing.T) {
	t.Parallel()
	token := strings.Repeat("AQCEAAAAKgAAAAMAAAAAAAAAAf", 20)
	calls := map[string]func(e *Engine) error{
		"success": func(e *Engine) error {
			return e.SendTaskSuccess(context.Background(), token, json.RawMessage(`{"ok":true}`))
		},
		"failure":   func(e *Engine) error { return e.SendTaskFailure(context.Background(), token, "Job.Failed", "boom") },
		"heartbeat": func(e *Engine) error { return e.SendTaskHeartbeat(context.Background(), token) },
	}
	for _, c := range []struct {
		name     string
		err      error
		wantCode string
	}{
		{"timed out", &types.TaskTimedOut{Message: aws.String("Task Timed Out")}, longrun.ETASKGONE},
		{"does not exist", &types.TaskDoesNotExist{Message: aws.String("Task does not exist")}, longrun.ETASKGONE},
		{"invalid token", &types.InvalidToken{Message: aws.String("Invalid token")}, longrun.ETASKGONE},
		{"other error", &types.InvalidOutput{Message: aws.String("Invalid output")}, longrun.EINTERNAL},
		{"ok", nil, ""},
	} {
		for op, call := range calls {
			t.Run(c.name+"/"+op, func(t *testing.T) {
				t.Parallel()
				err := call(New(&fake{err: c.err}, Config{StateMachineARN: smARN}))
				if got := longrun.ErrorCode(err); got != c.wantCode {
					t.Fatalf("error %v has code %q, want %q", err, got, c.wantCode)
				}
				if c.err != nil && !errors.Is(err, c.err) {
					t.Errorf("error %v does not wrap the SDK error", err)
				}
				if err != nil && strings.Contains(err.Error(), token) {
					t.Errorf("error quotes the whole 520-character token: %v", err)
				}
			})
		}
	}
}

func TestFailureTruncatedToLimits(t *testing.T) {
	t.Parallel()
	f := &fake{}
	longName := strings.Repeat("é", 300)    // 300 characters, 600 bytes
	longCause := strings.Repeat("x", 40000) // over 32768
	if err := New(f, Config{StateMachineARN: smARN}).SendTaskFailure(context.Background(), "tok", longName, longCause); err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(aws.ToString(f.failure.Error)); n != longrun.MaxErrorNameLength || !utf8.ValidString(aws.ToString(f.failure.Error)) {
		t.Errorf("error is %d characters (valid UTF-8: %v), want %d", n, utf8.ValidString(aws.ToString(f.failure.Error)), longrun.MaxErrorNameLength)
	}
	if n := len(aws.ToString(f.failure.Cause)); n != longrun.MaxCauseLength {
		t.Errorf("cause is %d characters, want %d", n, longrun.MaxCauseLength)
	}
}

func TestStartAlreadyExists(t *testing.T) {
	t.Parallel()
	in := longrun.StateInput{ExecutionID: "0193a1b2-0000-7000-8000-000000000001", Input: json.RawMessage(`{"timer":3}`),
		Limits: longrun.Limits{TimeoutSeconds: 3600, HeartbeatSeconds: 60}}
	in.ExecutionARN = New(&fake{}, Config{StateMachineARN: smARN}).ExecutionARN(in.ExecutionID)
	same, _ := json.Marshal(in)
	// The same input, reordered and re-spaced as Step Functions may return it.
	var m map[string]any
	_ = json.Unmarshal(same, &m)
	respaced, _ := json.MarshalIndent(m, "", "  ")
	exists := &types.ExecutionAlreadyExists{Message: aws.String("Execution Already Exists")}
	for _, c := range []struct {
		name     string
		status   types.ExecutionStatus
		input    string
		wantCode string
	}{
		{"running, same input", types.ExecutionStatusRunning, string(respaced), ""},
		{"running, other input", types.ExecutionStatusRunning, `{"executionId":"x"}`, longrun.EDUPLICATE},
		{"ended, same input", types.ExecutionStatusSucceeded, string(same), longrun.EDUPLICATE},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := &fake{err: exists, describe: []*sfn.DescribeExecutionOutput{{Status: c.status, Input: aws.String(c.input)}}}
			err := New(f, Config{StateMachineARN: smARN}).StartExecution(context.Background(), in)
			if got := longrun.ErrorCode(err); got != c.wantCode {
				t.Fatalf("StartExecution = %v (code %q), want code %q", err, got, c.wantCode)
			}
		})
	}
}

func TestStopStatuses(t *testing.T) {
	t.Parallel()
	arn := "arn:aws:states:eu-west-1:123456789012:execution:longrun:id"
	for _, c := range []struct {
		name     string
		statuses []types.ExecutionStatus // before and after the stop
		wantCode string
		wantStop bool
	}{
		{"running", []types.ExecutionStatus{types.ExecutionStatusRunning, types.ExecutionStatusAborted}, "", true},
		{"already ended", []types.ExecutionStatus{types.ExecutionStatusSucceeded}, longrun.ENOTRUNNING, false},
		{"ended during the stop", []types.ExecutionStatus{types.ExecutionStatusRunning, types.ExecutionStatusFailed}, longrun.ENOTRUNNING, true},
		{"unknown", nil, longrun.ENOTFOUND, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := &fake{}
			for _, s := range c.statuses {
				f.describe = append(f.describe, &sfn.DescribeExecutionOutput{Status: s})
			}
			err := New(f, Config{StateMachineARN: smARN}).StopExecution(context.Background(), arn, longrun.ErrNameStopped, "stopped by the client")
			if got := longrun.ErrorCode(err); got != c.wantCode {
				t.Fatalf("StopExecution = %v (code %q), want code %q", err, got, c.wantCode)
			}
			if (f.stop != nil) != c.wantStop {
				t.Errorf("StopExecution called: %v, want %v", f.stop != nil, c.wantStop)
			}
		})
	}
}

// Each round of delivery has its own execution name, the same every time the
// round is started, so a retried start is one loop; an "already exists"
// answer for it is success.
func TestRedeliverNamesRounds(t *testing.T) {
	t.Parallel()
	f := &fake{}
	e := New(f, Config{StateMachineARN: smARN, DeliverStateMachineARN: "arn:aws:states:eu-west-1:123456789012:stateMachine:deliver"})
	id := "0193a1b2-0000-7000-8000-000000000001"
	for _, round := range []int{0, 0, 1} {
		if err := e.Redeliver(context.Background(), id, round); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{aws.ToString(f.started[0].Name), aws.ToString(f.started[1].Name), aws.ToString(f.started[2].Name)}
	if names[0] != id+"-r0" || names[1] != names[0] || names[2] != id+"-r1" {
		t.Errorf("names %q, want the round's own name each time", names)
	}
	if got := aws.ToString(f.started[0].Input); got != `{"executionId":"`+id+`"}` {
		t.Errorf("input = %s", got)
	}
	// A round started before: running is that one loop, ended is ENOTRUNNING
	// (the caller starts the next round).
	f.err = &types.ExecutionAlreadyExists{Message: aws.String("Execution Already Exists")}
	f.describe = []*sfn.DescribeExecutionOutput{{Status: types.ExecutionStatusRunning}}
	if err := e.Redeliver(context.Background(), id, 1); err != nil {
		t.Errorf("a round whose loop runs (ExecutionAlreadyExists): %v, want success", err)
	}
	f.describe = []*sfn.DescribeExecutionOutput{{Status: types.ExecutionStatusFailed}}
	if err := e.Redeliver(context.Background(), id, 1); !longrun.IsCode(err, longrun.ENOTRUNNING) {
		t.Errorf("a round whose loop ended: %v, want ENOTRUNNING", err)
	}
	f.err = &types.ExecutionLimitExceeded{Message: aws.String("limit")}
	if err := e.Redeliver(context.Background(), id, 2); err == nil {
		t.Error("another failure to start must be returned")
	}
	if err := New(f, Config{StateMachineARN: smARN}).Redeliver(context.Background(), id, 0); err == nil {
		t.Error("Redeliver without a deliver state machine succeeded")
	}
}
