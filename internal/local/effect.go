package local

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/google/uuid"
	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/jsonscan"
)

// dispatch starts the invocation (or the send after commit) of ex's
// current attempt, once per attempt. Its outcome comes back as cmdResult.
func (e *Engine) dispatch(ctx context.Context, ex *execution) {
	if ex.status != longrun.StatusRunning || ex.dispatched == ex.attempt {
		return
	}
	if ex.phase != phaseInvoke && (ex.phase != phaseToken || ex.sent) {
		return
	}
	ex.dispatched = ex.attempt
	tgt, t := ex.m.tasks[taskKey(ex.sm().Path(), ex.state)], ex.task
	c := &command{kind: cmdResult, arn: ex.arn, attempt: ex.attempt}
	if ex.phase == phaseInvoke && ex.sent {
		// A RequestResponse send committed: its result is the next step,
		// applied by Run's goroutine, which is the caller.
		c.data = ex.sendResult
		e.retry = append(e.retry, c)
		return
	}
	e.workers.Go(func() {
		select {
		case e.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-e.sem }()
		if tgt.kind == lambdaInvoke {
			c.data, c.errName, c.cause, c.failed = invoke(ctx, tgt.function, t.Parameters, t.TimeoutSeconds)
		} else {
			q, _, err := tgt.target(t.Parameters)
			if err != nil {
				// Checked when the task started; a queue cannot vanish.
				c.errName, c.cause, c.failed = errNoQueue, err.Error(), true
			} else if c.data, err = e.send(ctx, q, t.Parameters); err != nil {
				return // ctx ended; the next Run sends again
			}
		}
		if ctx.Err() != nil {
			return
		}
		e.post(c)
	})
}

// send sends the task message to a queue that cannot join the transaction,
// retrying until it is accepted or ctx ends.
func (e *Engine) send(ctx context.Context, q longrun.Queue, params json.RawMessage) (json.RawMessage, error) {
	body, err := messageBody(params)
	if err != nil {
		return nil, err
	}
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 30*time.Second) {
		err := q.Send(ctx, body)
		if err == nil {
			return sendResult(uuid.NewString(), body), nil
		}
		e.log.WarnContext(ctx, "local engine: send task message failed; retrying", "error", err, "retry_in", delay)
		if err := e.sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

// sleep waits d on the engine's clock, or until ctx ends.
func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	return longrun.SleepUntil(ctx, e.clock, e.now().Add(d))
}

// messageBody is sqs:sendMessage's MessageBody: a string as it is, any
// other JSON value serialised, as Step Functions does.
//
// The parameters are scanned, not decoded (jsonscan): they hold the
// payload, and this runs on the engine's goroutine for every task sent.
func messageBody(params json.RawMessage) (string, error) {
	body, _, err := jsonscan.Field(params, "MessageBody")
	if err != nil {
		return "", fmt.Errorf("sqs:sendMessage parameters: %w", err)
	}
	if len(body) == 0 {
		return "", errors.New("sqs:sendMessage parameters have no MessageBody")
	}
	var s string
	if body[0] == '"' {
		if err := json.Unmarshal(body, &s); err != nil {
			return "", fmt.Errorf("sqs:sendMessage MessageBody: %w", err)
		}
		return s, nil
	}
	return string(body), nil
}

// sendResult is sqs:sendMessage's result as Step Functions gives it.
func sendResult(id, body string) json.RawMessage {
	sum := md5.Sum([]byte(body))
	out, _ := json.Marshal(struct {
		MessageID string `json:"MessageId"`
		MD5       string `json:"MD5OfMessageBody"`
	}{id, hex.EncodeToString(sum[:])}) // two strings always encode
	return out
}

// invoke runs an in-process Lambda function as lambda:invoke does: the
// result is {"ExecutedVersion","Payload","StatusCode"}; an error or a panic
// is the task's failure, named and described as the Go Lambda runtime
// reports it.
func invoke(ctx context.Context, f Function, params json.RawMessage, timeoutSeconds int) (result json.RawMessage, errName, cause string, failed bool) {
	payload, _, err := jsonscan.Field(params, "Payload") // scanned past, not decoded: it holds the payload
	if err != nil {
		return nil, "States.Runtime", fmt.Sprintf("lambda:invoke parameters: %v", err), true
	}
	if len(payload) == 0 {
		payload = json.RawMessage("{}")
	}
	if timeoutSeconds > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutSeconds)*time.Second)
		defer cancel()
	}
	out, ierr := call(ctx, f, payload)
	if ierr != nil {
		c, _ := json.Marshal(ierr) // errorMessage, errorType (and stackTrace after a panic)
		return nil, ierr.Type, string(c), true
	}
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	if !json.Valid(out) {
		return nil, "Runtime.MarshalError", `{"errorMessage":"the function returned invalid JSON","errorType":"Runtime.MarshalError"}`, true
	}
	res, err := json.Marshal(struct {
		ExecutedVersion string          `json:"ExecutedVersion"`
		Payload         json.RawMessage `json:"Payload"`
		StatusCode      int             `json:"StatusCode"`
	}{"$LATEST", out, 200})
	if err != nil {
		return nil, "States.Runtime", err.Error(), true
	}
	return res, "", "", false
}

func call(ctx context.Context, f Function, payload json.RawMessage) (out json.RawMessage, ierr *messages.InvokeResponse_Error) {
	defer func() {
		if v := recover(); v != nil {
			if e, ok := v.(messages.InvokeResponse_Error); ok {
				ierr = &e
				return
			}
			ierr = &messages.InvokeResponse_Error{Message: fmt.Sprint(v), Type: errorType(v)}
		}
	}()
	out, err := f(ctx, payload)
	if err != nil {
		return nil, lambdaError(err)
	}
	return out, nil
}

// lambdaError is the error the Go Lambda runtime reports for a handler's
// error: an InvokeResponse_Error as it is, otherwise the message and the
// name of the error's type.
func lambdaError(err error) *messages.InvokeResponse_Error {
	switch e := err.(type) {
	case messages.InvokeResponse_Error:
		return &e
	case *messages.InvokeResponse_Error:
		return e
	}
	return &messages.InvokeResponse_Error{Message: err.Error(), Type: errorType(err)}
}

// errorType names a value's type as the Go Lambda runtime does: the type's
// name, through one pointer ("errorString" for errors.New).
func errorType(v any) string {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		return t.Elem().Name()
	}
	return t.Name()
}

// outboxItem is a status-change event waiting for its function.
type outboxItem struct {
	id       int64
	function string
	body     json.RawMessage
}

// StatusDetail is the detail of a "Step Functions Execution Status Change"
// event, as EventBridge delivers it: input and output are JSON text; the
// dates are Unix milliseconds; absent values are null.
type StatusDetail struct {
	ExecutionARN    string          `json:"executionArn"`
	StateMachineARN string          `json:"stateMachineArn"`
	Name            string          `json:"name"`
	Status          longrun.Status  `json:"status"`
	StartDate       int64           `json:"startDate"`
	StopDate        *int64          `json:"stopDate"`
	Input           string          `json:"input"`
	Output          *string         `json:"output"`
	InputDetails    includedDetails `json:"inputDetails"`
	OutputDetails   includedDetails `json:"outputDetails"`
	Error           *string         `json:"error"`
	Cause           *string         `json:"cause"`
}

type includedDetails struct {
	Included bool `json:"included"`
}

// StatusDetailType and StatusSource identify status-change events.
const (
	StatusDetailType = "Step Functions Execution Status Change"
	StatusSource     = "aws.states"
)

// statusEvent queues the status-change event of ex's current status for
// every rule that wants it, in the batch's transaction.
func (b *batch) statusEvent(ex *execution) {
	fns := ex.m.rules[ex.status]
	if len(fns) == 0 || b.err != nil {
		return
	}
	d := StatusDetail{
		ExecutionARN: ex.arn, StateMachineARN: ex.m.arn, Name: ex.name, Status: ex.status,
		StartDate: ex.start.UnixMilli(), Input: string(ex.input),
		InputDetails: includedDetails{true}, OutputDetails: includedDetails{true},
	}
	if !ex.stop.IsZero() {
		stop := ex.stop.UnixMilli()
		d.StopDate = &stop
	}
	if ex.output != nil {
		out := string(ex.output)
		d.Output = &out
	}
	if ex.status.Terminal() && ex.status != longrun.StatusSucceeded {
		d.Error, d.Cause = &ex.errName, &ex.cause
	}
	detail, err := json.Marshal(d)
	if err != nil {
		b.abort(fmt.Errorf("status event of %s: %w", ex.arn, err))
		return
	}
	for _, fn := range fns {
		body, err := json.Marshal(events.EventBridgeEvent{
			Version: "0", ID: uuid.NewString(), DetailType: StatusDetailType, Source: StatusSource,
			AccountID: ex.m.account, Time: b.now.Truncate(time.Second), Region: ex.m.region,
			Resources: []string{ex.arn}, Detail: detail,
		})
		if err != nil {
			b.abort(fmt.Errorf("status event of %s: %w", ex.arn, err))
			return
		}
		b.outbox = append(b.outbox, outboxItem{function: fn, body: body})
	}
}

// writeOutbox inserts the batch's status-change events and learns their ids.
func (b *batch) writeOutbox() error {
	for i := range b.outbox {
		o := &b.outbox[i]
		if b.outboxIns == nil {
			var err error
			if b.outboxIns, err = b.prepare(insertOutboxSQL); err != nil {
				return fmt.Errorf("prepare outbox insert: %w", err)
			}
		}
		res, err := b.outboxIns.ExecContext(b.ctx, o.function, string(o.body), b.ms)
		if err != nil {
			return fmt.Errorf("queue status event: %w", err)
		}
		if o.id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("queue status event: %w", err)
		}
	}
	return nil
}

// deliverEvent calls the event's function until it accepts the event
// (returns no error), with backoff, then has the row deleted.
func (e *Engine) deliverEvent(ctx context.Context, o outboxItem) {
	e.workers.Go(func() {
		for delay := time.Second; ; delay = min(2*delay, 5*time.Minute) {
			f := findFunction(e.fns, o.function)
			if f == nil {
				e.log.ErrorContext(ctx, "local engine: status event for an unknown function kept", "function", o.function, "event", o.id)
				return
			}
			_, ierr := call(ctx, f, o.body)
			if ctx.Err() != nil {
				return
			}
			if ierr == nil {
				e.post(&command{kind: cmdOutboxDone, id: o.id})
				return
			}
			e.log.WarnContext(ctx, "local engine: status event not accepted; retrying",
				"function", o.function, "event", o.id, "error", ierr.Message, "retry_in", delay)
			if e.sleep(ctx, delay) != nil {
				return
			}
		}
	})
}
