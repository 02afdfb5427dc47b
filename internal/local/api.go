package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/jsonscan"
)

// Start starts an execution of the named machine. Starting a name that is
// running with the same input does nothing and succeeds (as Step Functions
// does); a name already used otherwise gives EDUPLICATE. It returns the
// execution's ARN once the start has committed.
func (e *Engine) Start(ctx context.Context, machineName, name string, input json.RawMessage) (string, error) {
	return e.StartWith(ctx, machineName, name, input, nil)
}

// StartWith is Start with more writes in the same transaction: with runs
// in the transaction that creates the execution (never if the execution
// exists already), so what it writes and the start commit together or not
// at all. If with fails, nothing of the start is kept and StartWith returns
// its error. with must do nothing but database work in tx: it may run more
// than once (sqlite.DB.Write's rule).
func (e *Engine) StartWith(ctx context.Context, machineName, name string, input json.RawMessage, with func(ctx context.Context, tx *sql.Tx) error) (string, error) {
	return e.startWith(ctx, machineName, name, input, with, false)
}

// startWith is StartWith; valid says input is known to be JSON already.
func (e *Engine) startWith(ctx context.Context, machineName, name string, input json.RawMessage, with func(ctx context.Context, tx *sql.Tx) error, valid bool) (string, error) {
	m := e.machines[machineName]
	if m == nil {
		return "", longrun.Errorf(longrun.EINVALID, "no state machine named %q", machineName)
	}
	if name == "" || len(name) > longrun.MaxNameLength {
		return "", longrun.Errorf(longrun.EINVALID, "execution name %q must have 1 to %d characters", name, longrun.MaxNameLength)
	}
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	if len(input) > longrun.MaxInputBytes {
		return "", longrun.Errorf(longrun.ETOOLARGE, "execution input is %d bytes, over the %d-byte limit", len(input), longrun.MaxInputBytes)
	}
	if !valid && !jsonscan.Valid(input) {
		return "", longrun.Errorf(longrun.EINVALID, "execution input is not JSON")
	}
	arn := executionARN(m, name)
	if err := e.submit(ctx, &command{kind: cmdStart, m: m, arn: arn, name: name, data: input, with: with}); err != nil {
		return "", fmt.Errorf("start execution %s: %w", arn, err)
	}
	return arn, nil
}

// ExecutionARN returns the ARN of the main machine's execution named id.
func (e *Engine) ExecutionARN(id string) string {
	m := e.machines[e.main]
	if m == nil {
		return ""
	}
	return executionARN(m, id)
}

// StartExecution starts the main machine with in as its input and the
// execution id as its name.
func (e *Engine) StartExecution(ctx context.Context, in longrun.StateInput) error {
	return e.StartExecutionWith(ctx, in, nil)
}

// StartExecutionWith is StartExecution with more writes in the start's
// transaction (see StartWith): devapp writes the execution record there.
func (e *Engine) StartExecutionWith(ctx context.Context, in longrun.StateInput, with func(ctx context.Context, tx *sql.Tx) error) error {
	if e.machines[e.main] == nil {
		return longrun.Errorf(longrun.EINVALID, "the local engine has no main state machine")
	}
	if want := e.ExecutionARN(in.ExecutionID); in.ExecutionARN != want {
		return longrun.Errorf(longrun.EINVALID, "execution ARN %q is not %q", in.ExecutionARN, want)
	}
	input, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("start execution %s: %w", in.ExecutionID, err)
	}
	// json.Marshal checked the input (a RawMessage) as it copied it.
	_, err = e.startWith(ctx, e.main, in.ExecutionID, input, with, true)
	return err
}

// StopExecution stops a running execution: it ends ABORTED, its pending
// task token stops being valid and a running invocation's result is
// ignored. An execution that has ended gives ENOTRUNNING; an unknown one
// ENOTFOUND.
func (e *Engine) StopExecution(ctx context.Context, arn, errName, cause string) error {
	return e.StopExecutionWith(ctx, arn, errName, cause, nil)
}

// StopExecutionWith is StopExecution with more writes in the stop's
// transaction: with runs only if the execution is running, and if it
// fails nothing of the stop is kept and its error is returned. devapp
// records ABORTED there, or refuses the stop when the execution's record
// says it has already ended, so the engine's history, describe and the
// webhook never disagree about a stop racing a completion.
func (e *Engine) StopExecutionWith(ctx context.Context, arn, errName, cause string, with func(ctx context.Context, tx *sql.Tx) error) error {
	if err := e.submit(ctx, &command{kind: cmdStop, arn: arn, errName: errName, cause: cause, with: with}); err != nil {
		return fmt.Errorf("stop execution %s: %w", arn, err)
	}
	return nil
}

// Redeliver starts round `round` of the execution's webhook delivery: the
// deliver machine with {"executionId": id}, in the execution
// longrun.DeliverName names. A round whose loop is running is that one loop:
// nothing more starts; one whose loop ended gives ENOTRUNNING.
func (e *Engine) Redeliver(ctx context.Context, executionID string, round int) error {
	if e.machines[e.deliver] == nil {
		return longrun.Errorf(longrun.EINVALID, "the local engine has no deliver state machine")
	}
	input, err := json.Marshal(struct {
		ExecutionID string `json:"executionId"`
	}{executionID})
	if err != nil {
		return fmt.Errorf("redeliver %s: %w", executionID, err)
	}
	_, err = e.Start(ctx, e.deliver, longrun.DeliverName(executionID, round), input)
	switch {
	case longrun.IsCode(err, longrun.EDUPLICATE):
		// Start succeeds for a running execution of the same name and
		// input: this one has ended.
		return longrun.Errorf(longrun.ENOTRUNNING, "round %d of the webhook of %s has ended", round, executionID)
	case err != nil:
		return fmt.Errorf("redeliver %s round %d: %w", executionID, round, err)
	}
	return nil
}

// SendTaskSuccess completes the task holding token with output.
func (e *Engine) SendTaskSuccess(ctx context.Context, token string, output json.RawMessage) error {
	if len(output) == 0 || !jsonscan.Valid(output) {
		return longrun.Errorf(longrun.EINVALID, "task output is not JSON")
	}
	if len(output) > longrun.MaxInputBytes {
		return longrun.Errorf(longrun.ETOOLARGE, "task output is %d bytes, over the %d-byte limit", len(output), longrun.MaxInputBytes)
	}
	if err := e.submit(ctx, &command{kind: cmdSuccess, token: token, data: output}); err != nil {
		return fmt.Errorf("send task success: %w", err)
	}
	return nil
}

// SendTaskFailure fails the task holding token with errName and cause,
// which its Retry and Catch then match.
func (e *Engine) SendTaskFailure(ctx context.Context, token, errName, cause string) error {
	if err := e.submit(ctx, &command{kind: cmdFailure, token: token, errName: errName, cause: cause}); err != nil {
		return fmt.Errorf("send task failure: %w", err)
	}
	return nil
}

// SendTaskHeartbeat restarts the task's HeartbeatSeconds.
func (e *Engine) SendTaskHeartbeat(ctx context.Context, token string) error {
	if err := e.submit(ctx, &command{kind: cmdHeartbeat, token: token}); err != nil {
		return fmt.Errorf("send task heartbeat: %w", err)
	}
	return nil
}

// Running is how many executions of the main machine are running: the
// backlog admission control bounds (each costs memory until it ends).
func (e *Engine) Running() int { return int(e.running.Load()) }
