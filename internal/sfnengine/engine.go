// Package sfnengine runs longrun executions on AWS Step Functions: it is
// longrun.Orchestrator (start, stop, redeliver) and longrun.TaskReporter
// (SendTaskSuccess/Failure/Heartbeat for the task tokens the Work state hands
// to workers through SQS).
//
// The execution id is the Step Functions execution name, so the ARN is known
// before the execution starts and a retried start finds the running
// execution instead of starting a second one. Step Functions answers a
// repeated StartExecution of a running Standard execution with the same input
// with success; emulators that answer ExecutionAlreadyExists instead get the
// same treatment here, by describing the execution and comparing its input.
package sfnengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

	"github.com/longrun/longrun"
)

// API is the part of the Step Functions client the engine uses.
// *sfn.Client implements it.
type API interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	StopExecution(ctx context.Context, in *sfn.StopExecutionInput, opts ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opts ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
	SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, opts ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error)
	SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, opts ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error)
	SendTaskHeartbeat(ctx context.Context, in *sfn.SendTaskHeartbeatInput, opts ...func(*sfn.Options)) (*sfn.SendTaskHeartbeatOutput, error)
}

// Config names the two state machines (statemachine/longrun.asl.json and
// statemachine/deliver.asl.json as deployed).
type Config struct {
	StateMachineARN        string
	DeliverStateMachineARN string
}

// Engine is longrun.Orchestrator and longrun.TaskReporter on Step Functions.
type Engine struct {
	client API
	cfg    Config
}

var (
	_ longrun.Orchestrator = (*Engine)(nil)
	_ longrun.TaskReporter = (*Engine)(nil)
)

// New returns an Engine for the state machines in cfg.
func New(client API, cfg Config) *Engine {
	return &Engine{client: client, cfg: cfg}
}

// ExecutionARN derives the execution ARN from the state machine ARN:
// arn:<partition>:states:<region>:<account>:stateMachine:<sm> becomes
// arn:<partition>:states:<region>:<account>:execution:<sm>:<id>.
func (e *Engine) ExecutionARN(id string) string {
	return executionARN(e.cfg.StateMachineARN, id)
}

// executionARN is the ARN of the execution named name of the state machine
// with ARN machine.
func executionARN(machine, name string) string {
	return strings.Replace(machine, ":stateMachine:", ":execution:", 1) + ":" + name
}

// StartExecution starts the state machine with in.ExecutionID as the name.
func (e *Engine) StartExecution(ctx context.Context, in longrun.StateInput) error {
	input, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("marshal input of %s: %w", in.ExecutionID, err)
	}
	_, err = e.client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(e.cfg.StateMachineARN),
		Name:            aws.String(in.ExecutionID),
		Input:           aws.String(string(input)),
	})
	if !hasCode(err, "ExecutionAlreadyExists") {
		if err != nil {
			return fmt.Errorf("start execution %s: %w", in.ExecutionID, err)
		}
		return nil
	}
	arn := e.ExecutionARN(in.ExecutionID)
	out, derr := e.client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if derr != nil {
		return fmt.Errorf("start execution %s: %w; describe it: %w", in.ExecutionID, err, derr)
	}
	if out.Status == types.ExecutionStatusRunning && sameJSON(aws.ToString(out.Input), string(input)) {
		return nil // a retried start: it is running already
	}
	return fmt.Errorf("start execution %s: %w", in.ExecutionID, errors.Join(
		longrun.Errorf(longrun.EDUPLICATE, "execution %s exists with status %s and another input", in.ExecutionID, out.Status), err))
}

// StopExecution stops a running execution. Step Functions does not say
// whether the execution was still running, so the engine asks before and
// after: an execution that had ended, or ended on its own meanwhile, gives
// ENOTRUNNING.
func (e *Engine) StopExecution(ctx context.Context, arn, errName, cause string) error {
	status, err := e.status(ctx, arn)
	if err != nil {
		return fmt.Errorf("stop execution %s: %w", arn, err)
	}
	if status != types.ExecutionStatusRunning {
		return notRunning(arn, status)
	}
	_, err = e.client.StopExecution(ctx, &sfn.StopExecutionInput{
		ExecutionArn: aws.String(arn),
		Error:        aws.String(longrun.Truncate(errName, longrun.MaxErrorNameLength)),
		Cause:        aws.String(longrun.Truncate(cause, longrun.MaxCauseLength)),
	})
	if err != nil {
		return fmt.Errorf("stop execution %s: %w", arn, err)
	}
	status, err = e.status(ctx, arn)
	if err != nil {
		return fmt.Errorf("stop execution %s: after the stop: %w", arn, err)
	}
	if status != types.ExecutionStatusRunning && status != types.ExecutionStatusAborted {
		return notRunning(arn, status)
	}
	return nil
}

func (e *Engine) status(ctx context.Context, arn string) (types.ExecutionStatus, error) {
	out, err := e.client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if hasCode(err, "ExecutionDoesNotExist") {
		return "", errors.Join(longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", arn), err)
	}
	if err != nil {
		return "", fmt.Errorf("describe: %w", err)
	}
	return out.Status, nil
}

// Started reports whether the state machine has an execution named id,
// running or ended: whether its StartExecution ever ran.
func (e *Engine) Started(ctx context.Context, id string) (bool, error) {
	_, err := e.status(ctx, e.ExecutionARN(id))
	if longrun.IsCode(err, longrun.ENOTFOUND) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("execution %s: %w", id, err)
	}
	return true, nil
}

func notRunning(arn string, status types.ExecutionStatus) error {
	return longrun.Errorf(longrun.ENOTRUNNING, "execution %s already ended %s", arn, status)
}

// Redeliver starts round `round` of executionID's webhook delivery: the
// deliver state machine in the execution longrun.DeliverName names.
// ExecutionAlreadyExists means the round was started before (AWS answers it
// for an ended execution of that name, emulators also for a running one):
// a running loop is success, an ended one ENOTRUNNING. Names stay reserved
// 90 days, past any delivery.
func (e *Engine) Redeliver(ctx context.Context, executionID string, round int) error {
	if e.cfg.DeliverStateMachineARN == "" {
		return fmt.Errorf("redeliver %s: no deliver state machine configured", executionID)
	}
	input, err := json.Marshal(map[string]string{"executionId": executionID})
	if err != nil {
		return fmt.Errorf("marshal redeliver input of %s: %w", executionID, err)
	}
	name := longrun.DeliverName(executionID, round)
	_, err = e.client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(e.cfg.DeliverStateMachineARN),
		Name:            aws.String(name),
		Input:           aws.String(string(input)),
	})
	if !hasCode(err, "ExecutionAlreadyExists") {
		if err != nil {
			return fmt.Errorf("redeliver %s round %d: %w", executionID, round, err)
		}
		return nil
	}
	arn := executionARN(e.cfg.DeliverStateMachineARN, name)
	status, serr := e.status(ctx, arn)
	switch {
	case serr != nil:
		return fmt.Errorf("redeliver %s round %d: %w", executionID, round, serr)
	case status == types.ExecutionStatusRunning:
		return nil
	}
	return longrun.Errorf(longrun.ENOTRUNNING, "round %d of the webhook of %s has ended (%s)", round, executionID, status)
}

// SendTaskSuccess completes the task with output (JSON; empty means null).
func (e *Engine) SendTaskSuccess(ctx context.Context, token string, output json.RawMessage) error {
	if len(output) == 0 {
		output = json.RawMessage("null")
	}
	_, err := e.client.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(string(output))})
	return taskError("send task success", token, err)
}

// SendTaskFailure fails the task with errName and cause, truncated to Step
// Functions' limits.
func (e *Engine) SendTaskFailure(ctx context.Context, token, errName, cause string) error {
	_, err := e.client.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{
		TaskToken: aws.String(token),
		Error:     aws.String(longrun.Truncate(errName, longrun.MaxErrorNameLength)),
		Cause:     aws.String(longrun.Truncate(cause, longrun.MaxCauseLength)),
	})
	return taskError("send task failure", token, err)
}

// SendTaskHeartbeat tells Step Functions the task is alive. ETASKGONE means
// the worker should stop the job: nobody waits for its result any more.
func (e *Engine) SendTaskHeartbeat(ctx context.Context, token string) error {
	_, err := e.client.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(token)})
	return taskError("send task heartbeat", token, err)
}

// taskGoneCodes are the errors that mean the token will never be accepted:
// the task timed out, its execution ended, or it was completed already.
var taskGoneCodes = []string{"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}

func taskError(op, token string, err error) error {
	if err == nil {
		return nil
	}
	ref := tokenRef(token)
	for _, code := range taskGoneCodes {
		if hasCode(err, code) {
			return fmt.Errorf("%s for task %s: %w", op, ref,
				errors.Join(longrun.Errorf(longrun.ETASKGONE, "task %s is gone (%s)", ref, code), err))
		}
	}
	return fmt.Errorf("%s for task %s: %w", op, ref, err)
}

// tokenRef shortens a task token (up to 1024 characters) for messages.
func tokenRef(token string) string {
	const keep = 16
	if len(token) <= keep {
		return token
	}
	return token[:keep] + "…"
}

func hasCode(err error, code string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == code
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	return reflect.DeepEqual(x, y)
}
