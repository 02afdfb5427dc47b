package asl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/longrun/longrun"
)

// runner is one in-memory execution: a flat loop over states, each state a
// loop over its task attempts, built only on Enter, TaskSucceeded and
// TaskFailed.
type runner struct {
	m        *StateMachine
	o        RunOptions
	res      *Result
	deadline time.Time // zero: no execution timeout
}

func run(ctx context.Context, m *StateMachine, input json.RawMessage, o RunOptions) (*Result, error) {
	if o.Invoke == nil {
		return nil, errors.New("asl: RunOptions.Invoke is required")
	}
	if o.Clock == nil {
		o.Clock = longrun.SystemClock{}
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if o.NewToken == nil {
		o.NewToken = uuid.NewString
	}
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	if _, err := decodeJSON(input); err != nil {
		return nil, fmt.Errorf("asl: execution input is not JSON: %w", err)
	}
	r := &runner{m: m, o: o, res: &Result{}}
	c := o.Context
	c.Execution.Input = input
	start := o.Clock.Now()
	if c.Execution.StartTime.IsZero() {
		c.Execution.StartTime = start
	}
	if m.timeoutSeconds > 0 {
		r.deadline = c.Execution.StartTime.Add(time.Duration(m.timeoutSeconds) * time.Second)
	}
	r.event("ExecutionStarted", "", map[string]any{"input": input})
	out, err := r.machine(ctx, m, input, c)
	if err != nil {
		return nil, err
	}
	switch out.status {
	case StatusSucceeded:
		return r.succeeded(out.output), nil
	case StatusTimedOut:
		return r.timedOut(), nil
	}
	return r.failed(out.errName, out.cause), nil
}

// outcome is how a machine (the execution's or a branch's) ended.
type outcome struct {
	status         string
	output         json.RawMessage
	errName, cause string
}

// machine runs m from its StartAt: the execution's machine, or a Parallel
// branch's or Map iteration's (with c as the child's context).
func (r *runner) machine(ctx context.Context, m *StateMachine, input json.RawMessage, c Context) (outcome, error) {
	o := r.o
	timedOut := outcome{status: StatusTimedOut}
	name, in := m.startAt, input
	for {
		if err := ctx.Err(); err != nil {
			return outcome{}, err
		}
		now := o.Clock.Now()
		if r.expired(now) {
			return timedOut, nil
		}
		typ := m.StateType(name)
		c.State = StateContext{Name: name, EnteredTime: now}
		c.Task = TaskContext{}
		if m.Pattern(name) == WaitForTaskToken {
			c.Task.Token = o.NewToken()
		}
		r.event(typ+"StateEntered", name, map[string]any{"input": in})
		step, err := m.Enter(name, in, &c, now)
		if err != nil {
			return outcome{}, err
		}
		step, done, err := r.runTask(ctx, m, name, in, &c, step)
		if err != nil {
			return outcome{}, err
		}
		if done {
			return timedOut, nil
		}
		if step, done, err = r.runBranches(ctx, m, name, in, &c, step); err != nil {
			return outcome{}, err
		} else if done {
			return timedOut, nil
		}
		if step.Variables != nil {
			c.Variables = step.Variables
		}
		switch step.Kind {
		case StepWait:
			if err := longrun.SleepUntil(ctx, o.Clock, r.capped(step.Until)); err != nil {
				return outcome{}, err
			}
			if r.expired(o.Clock.Now()) {
				return timedOut, nil
			}
			r.event(typ+"StateExited", name, map[string]any{"output": step.Output})
			if step.Next == "" {
				return outcome{status: StatusSucceeded, output: step.Output}, nil
			}
			name, in = step.Next, step.Output
		case StepNext:
			r.event(typ+"StateExited", name, map[string]any{"output": step.Output})
			name, in = step.Next, step.Output
		case StepSucceed:
			r.event(typ+"StateExited", name, map[string]any{"output": step.Output})
			return outcome{status: StatusSucceeded, output: step.Output}, nil
		case StepFail:
			return outcome{status: StatusFailed, errName: step.Error, cause: step.Cause}, nil
		default:
			return outcome{}, fmt.Errorf("asl: state %q gave an unexpected %v step", name, step.Kind)
		}
	}
}

// runBranches runs the child executions of a Parallel or Map state, one
// after the other in order (any MaxConcurrency allows that, and it keeps
// a mock file's answers in a predictable order), until its step is no
// longer StepBranches or a retry of it. done reports that the execution
// timed out.
func (r *runner) runBranches(ctx context.Context, m *StateMachine, name string, in json.RawMessage, c *Context, step Step) (_ Step, done bool, _ error) {
	var retries []int
	typ := m.StateType(name)
	for step.Kind == StepBranches || (step.Kind == StepRetry && step.Task == nil) {
		if step.Kind == StepRetry {
			retries = step.Retries
			if err := longrun.SleepUntil(ctx, r.o.Clock, r.capped(step.Until)); err != nil {
				return step, true, err
			}
			if r.expired(r.o.Clock.Now()) {
				return step, true, nil
			}
		}
		r.event(typ+"StateStarted", name, nil)
		results := make([]BranchResult, len(step.Branches))
		for i, b := range step.Branches {
			child := Context{Execution: c.Execution, StateMachine: c.StateMachine, Variables: c.Variables}
			if b.Isolated {
				child.Variables = nil
			}
			if typ == "Map" {
				r.event("MapIterationStarted", name, map[string]any{"index": i})
			}
			out, err := r.machine(ctx, m.Machine(b.Machine), b.Input, child)
			if err != nil {
				return step, true, err
			}
			switch out.status {
			case StatusTimedOut:
				return step, true, nil
			case StatusSucceeded:
				results[i] = BranchResult{Output: out.output}
				if typ == "Map" {
					r.event("MapIterationSucceeded", name, map[string]any{"index": i})
				}
			default:
				results[i] = BranchResult{Failed: true, Error: out.errName, Cause: out.cause}
				if typ == "Map" {
					r.event("MapIterationFailed", name, map[string]any{"index": i, "error": out.errName, "cause": out.cause})
				}
			}
		}
		step = m.BranchesDone(name, in, results, retries, c, r.o.Clock.Now(), r.o.Rand)
		if step.Kind == StepRetry || step.Kind == StepFail || step.Caught != nil {
			r.event(typ+"StateFailed", name, nil)
		} else {
			r.event(typ+"StateSucceeded", name, nil)
		}
	}
	return step, false, nil
}

// runTask runs the attempts of a Task state until its step is no longer
// StepTask or StepRetry. done reports that the execution timed out.
func (r *runner) runTask(ctx context.Context, m *StateMachine, name string, in json.RawMessage, c *Context, step Step) (_ Step, done bool, _ error) {
	var retries []int
	for step.Kind == StepTask || (step.Kind == StepRetry && step.Task != nil) {
		if step.Kind == StepRetry {
			retries = step.Retries
			c.State.RetryCount = 0
			for _, n := range retries {
				c.State.RetryCount += n
			}
			if err := longrun.SleepUntil(ctx, r.o.Clock, r.capped(step.Until)); err != nil {
				return step, true, err
			}
		}
		if r.expired(r.o.Clock.Now()) {
			r.timedOut()
			return step, true, nil
		}
		t := step.Task
		r.event("TaskScheduled", name, map[string]any{
			"resource": t.Resource, "pattern": t.Pattern, "parameters": t.Parameters,
			"timeoutInSeconds": t.TimeoutSeconds, "heartbeatInSeconds": t.HeartbeatSeconds,
		})
		r.event("TaskStarted", name, nil)
		result, terr, execTimeout, err := r.invoke(ctx, t, c.Task.Token)
		if err != nil {
			return step, true, err
		}
		if execTimeout {
			r.timedOut()
			return step, true, nil
		}
		if terr == nil {
			r.event("TaskSucceeded", name, map[string]any{"output": result})
			step = m.TaskSucceeded(name, in, result, c)
			continue
		}
		typ := "TaskFailed"
		if terr.Name == ErrTimeout || terr.Name == ErrHeartbeatTimeout {
			typ = "TaskTimedOut"
		}
		r.event(typ, name, map[string]any{"error": terr.Name, "cause": terr.Cause})
		if c.Task.Token != "" {
			c.Task.Token = r.o.NewToken() // a retried attempt gets a new token
		}
		step = m.TaskFailed(name, in, terr.Name, terr.Cause, retries, c, r.o.Clock.Now(), r.o.Rand)
	}
	return step, false, nil
}

// invoke runs one attempt with the task's TimeoutSeconds (and what is left
// of the execution's) as a deadline on ctx. These deadlines use real time:
// Invoke is real work, unlike the injected clock that drives Wait and Retry.
func (r *runner) invoke(ctx context.Context, t *Task, token string) (json.RawMessage, *TaskError, bool, error) {
	var limit time.Duration
	if t.TimeoutSeconds > 0 {
		limit = time.Duration(t.TimeoutSeconds) * time.Second
	}
	execLimited := false
	if !r.deadline.IsZero() {
		if left := r.deadline.Sub(r.o.Clock.Now()); limit == 0 || left < limit {
			limit, execLimited = left, true
		}
	}
	ictx := ctx
	if limit > 0 {
		var cancel context.CancelFunc
		ictx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	result, err := r.o.Invoke(ictx, t, token)
	if err == nil {
		if _, jerr := decodeJSON(result); jerr != nil {
			return nil, &TaskError{Name: ErrTaskFailed, Cause: fmt.Sprintf("the task result is not JSON: %v", jerr)}, false, nil
		}
		return result, nil, false, nil
	}
	if ctx.Err() != nil {
		return nil, nil, false, ctx.Err()
	}
	var te *TaskError
	if errors.As(err, &te) {
		return nil, te, false, nil
	}
	// The task's own deadline passed: Invoke saw it (and said so) or it
	// returned just as it passed.
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ictx.Err(), context.DeadlineExceeded) {
		if execLimited {
			return nil, nil, true, nil
		}
		return nil, &TaskError{Name: ErrTimeout, Cause: fmt.Sprintf("the task did not finish within %d seconds", t.TimeoutSeconds)}, false, nil
	}
	return nil, &TaskError{Name: ErrTaskFailed, Cause: err.Error()}, false, nil
}

// capped ends sleeps at the execution's deadline, when it has one.
func (r *runner) capped(until time.Time) time.Time {
	if !r.deadline.IsZero() && until.After(r.deadline) {
		return r.deadline
	}
	return until
}

func (r *runner) expired(now time.Time) bool {
	return !r.deadline.IsZero() && !now.Before(r.deadline)
}

func (r *runner) event(typ, state string, detail map[string]any) {
	var d json.RawMessage
	if detail != nil {
		var err error
		if d, err = json.Marshal(detail); err != nil {
			d = nil
		}
	}
	r.res.History = append(r.res.History, HistoryEvent{
		ID: int64(len(r.res.History) + 1), Timestamp: r.o.Clock.Now(), Type: typ, State: state, Detail: d,
	})
}

func (r *runner) succeeded(out json.RawMessage) *Result {
	r.res.Status, r.res.Output = StatusSucceeded, out
	r.event("ExecutionSucceeded", "", map[string]any{"output": out})
	return r.res
}

func (r *runner) failed(errName, cause string) *Result {
	r.res.Status, r.res.Error, r.res.Cause = StatusFailed, errName, cause
	r.event("ExecutionFailed", "", map[string]any{"error": errName, "cause": cause})
	return r.res
}

func (r *runner) timedOut() *Result {
	r.res.Status, r.res.Error = StatusTimedOut, ErrTimeout
	r.res.Cause = "The execution ran longer than the state machine's TimeoutSeconds"
	r.event("ExecutionTimedOut", "", map[string]any{"error": r.res.Error, "cause": r.res.Cause})
	return r.res
}
