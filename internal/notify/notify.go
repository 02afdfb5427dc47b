// Package notify records how executions end and sends their webhooks. It is
// the logic of the notify Lambda on AWS and of the local engine's in-process
// notify: one entry point, Handle, takes the state machines' requests
// (finalize, deliver) and EventBridge's "Step Functions Execution Status
// Change" events, records each terminal outcome exactly once, and makes at
// most one webhook attempt per call. Between attempts it never sleeps: the
// deliver state machine waits for the time notify answers.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/delivery"
	"github.com/longrun/longrun/internal/jsonscan"
	"github.com/longrun/longrun/webhook"
)

// DefaultThinOver is the output size above which a webhook carries a
// describeUrl instead of the output, so a body stays small for receivers and
// under what API Gateway and most frameworks accept by default.
const DefaultThinOver = 64 << 10

// dueSlack lets an attempt run when it is due within this much: the deliver
// state machine's Wait and notify's clock may disagree by a moment, and an
// early call would otherwise bounce straight back.
const dueSlack = time.Second

// Sender makes one webhook attempt; *delivery.Sender is the real one.
type Sender interface {
	Attempt(ctx context.Context, url string, secrets []string, eventID string, body []byte) delivery.Result
}

var _ Sender = (*delivery.Sender)(nil)

// Config wires a Notifier.
type Config struct {
	Store   longrun.ExecutionStore
	Tenants longrun.TenantStore
	// Redeliver starts round `round` of an execution's delivery: the deliver
	// state machine, which then calls Handle with action "deliver" until the
	// delivery is done (longrun.Orchestrator.Redeliver).
	Redeliver func(ctx context.Context, executionID string, round int) error
	Sender    Sender
	Schedule  delivery.Schedule
	Clock     longrun.Clock // nil means longrun.SystemClock
	Logger    *slog.Logger  // nil discards
	// DescribeURL returns where a client reads an execution, for webhooks
	// whose output is too large to send; nil sends none.
	DescribeURL func(executionID string) string
	ThinOver    int // 0 means DefaultThinOver
}

// Notifier is notify's logic.
type Notifier struct {
	cfg Config
	log *slog.Logger
}

// New returns a Notifier.
func New(cfg Config) *Notifier {
	if cfg.Clock == nil {
		cfg.Clock = longrun.SystemClock{}
	}
	if cfg.ThinOver <= 0 {
		cfg.ThinOver = DefaultThinOver
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Notifier{cfg: cfg, log: log}
}

// EventID is the webhook-id of an execution's terminal event. An execution
// ends once, so its id names the event: every retry, redelivery and repeated
// notify call sends the same id, and receivers dedupe on it.
func EventID(executionID string) string { return "msg_" + executionID }

// Event types EventBridge uses for Step Functions status changes.
const (
	sourceStates     = "aws.states"
	detailTypeStatus = "Step Functions Execution Status Change"
)

// statusChange is the detail of a "Step Functions Execution Status Change"
// event (aws-lambda-go has the envelope, not this detail).
type statusChange struct {
	ExecutionARN    string  `json:"executionArn"`
	StateMachineARN string  `json:"stateMachineArn"`
	Name            string  `json:"name"` // the execution name: longrun's execution id
	Status          string  `json:"status"`
	StartDate       int64   `json:"startDate"` // unix milliseconds
	StopDate        *int64  `json:"stopDate"`  // unix milliseconds; null while running
	Error           *string `json:"error"`
	Cause           *string `json:"cause"`
}

var emptyObject = json.RawMessage(`{}`)

// Handle is notify's one entry point: a state machine's NotifyRequest or an
// EventBridge status-change event. A store or orchestrator failure is
// returned, so the caller retries; a webhook that fails never is — the
// failure is recorded in the delivery and retried on the schedule.
func (n *Notifier) Handle(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
	if req, ok := scanFinalize(raw); ok {
		return n.finalize(ctx, req)
	}
	var probe struct {
		Action     string `json:"action"`
		DetailType string `json:"detail-type"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, longrun.Errorf(longrun.EINVALID, "notify: the payload is not a JSON object: %v", err)
	}
	switch {
	case probe.DetailType != "":
		var ev events.EventBridgeEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, longrun.Errorf(longrun.EINVALID, "notify: malformed EventBridge event: %v", err)
		}
		return n.statusChanged(ctx, ev)
	case probe.Action == longrun.NotifyFinalize || probe.Action == longrun.NotifyDeliver:
		var req longrun.NotifyRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, longrun.Errorf(longrun.EINVALID, "notify: malformed %s request: %v", probe.Action, err)
		}
		if req.ExecutionID == "" {
			return nil, longrun.Errorf(longrun.EINVALID, "notify: %s request without executionId", req.Action)
		}
		if req.Action == longrun.NotifyFinalize {
			return n.finalize(ctx, req)
		}
		return n.deliver(ctx, req.ExecutionID)
	}
	return nil, longrun.Errorf(longrun.EINVALID, "notify: unknown payload: want action %q or %q, or a %q event", longrun.NotifyFinalize, longrun.NotifyDeliver, detailTypeStatus)
}

// scanFinalize reads a finalize request, which carries the job's output,
// in one pass (jsonscan) that copies the output as it is rather than
// checking it all, then probing it, then decoding it. Anything else, and
// anything json.Unmarshal would report, is not ok: Handle then goes the
// long way, whose errors say what is wrong.
func scanFinalize(raw json.RawMessage) (req longrun.NotifyRequest, ok bool) {
	v, err := jsonscan.Fields(raw, "action", "executionId", "status", "failure", "detail-type", "output")
	if err != nil {
		return req, false
	}
	var detailType string
	for i, dst := range []any{&req.Action, &req.ExecutionID, &req.Status, &req.Failure, &detailType} {
		if v[i] != nil && json.Unmarshal(v[i], dst) != nil {
			return req, false
		}
	}
	req.Output = bytes.Clone(v[5])
	return req, detailType == "" && req.Action == longrun.NotifyFinalize && req.ExecutionID != ""
}

// finalize records the outcome the state machine reached (exactly once),
// then makes the first webhook attempt. A repeated finalize — the state
// machine retrying a call that failed after the record was written — records
// nothing and only makes sure delivery goes on.
func (n *Notifier) finalize(ctx context.Context, req longrun.NotifyRequest) (json.RawMessage, error) {
	o := longrun.Outcome{Status: req.Status, StopDate: n.cfg.Clock.Now()}
	switch req.Status {
	case longrun.StatusSucceeded:
		if len(req.Output) > 0 {
			o.Output = req.Output
		}
	case longrun.StatusFailed:
		if req.Failure != nil {
			o.Error, o.Cause = req.Failure.Error, req.Failure.Cause
		}
	default:
		return nil, longrun.Errorf(longrun.EINVALID, "notify: finalize with status %q; want SUCCEEDED or FAILED", req.Status)
	}
	e, recorded, err := n.cfg.Store.FinishExecution(ctx, req.ExecutionID, o)
	if err != nil {
		return nil, fmt.Errorf("finish execution %s: %w", req.ExecutionID, err)
	}
	n.logOutcome(ctx, e, recorded, "finalize")
	// The state machine retries finalize only after an error, so a pending
	// delivery seen here may have lost its Redeliver: start it (again).
	if err := n.ensureDelivery(ctx, e, true); err != nil {
		return nil, err
	}
	return emptyObject, nil
}

// statusChanged handles an execution that ended outside Finalize: timed out,
// stopped (ABORTED), or failed where no Catch reached FinalizeFailure.
func (n *Notifier) statusChanged(ctx context.Context, ev events.EventBridgeEvent) (json.RawMessage, error) {
	if ev.Source != sourceStates || ev.DetailType != detailTypeStatus {
		return nil, longrun.Errorf(longrun.EINVALID, "notify: unexpected event %q from %q", ev.DetailType, ev.Source)
	}
	var d statusChange
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return nil, longrun.Errorf(longrun.EINVALID, "notify: malformed %q detail: %v", detailTypeStatus, err)
	}
	log := n.log.With("execution_id", d.Name, "event_id", ev.ID, "status", d.Status)
	status := longrun.Status(d.Status)
	switch status {
	case longrun.StatusFailed, longrun.StatusTimedOut, longrun.StatusAborted:
	default:
		// SUCCEEDED is recorded by Finalize, with the output; RUNNING and
		// redrive statuses end nothing.
		log.InfoContext(ctx, "status change ignored")
		return emptyObject, nil
	}
	if d.Name == "" {
		return nil, longrun.Errorf(longrun.EINVALID, "notify: status change without an execution name")
	}
	o := longrun.Outcome{Status: status, StopDate: n.cfg.Clock.Now()}
	if d.StopDate != nil {
		o.StopDate = time.UnixMilli(*d.StopDate).UTC()
	}
	if d.Error != nil {
		o.Error = *d.Error
	}
	if d.Cause != nil {
		o.Cause = *d.Cause
	}
	if o.Error == "" {
		// Step Functions leaves error empty for a timeout of the whole
		// execution and for a stop without one; describe should still say.
		switch status {
		case longrun.StatusTimedOut:
			o.Error = "States.Timeout"
		case longrun.StatusAborted:
			o.Error = longrun.ErrNameStopped
		}
	}
	e, recorded, err := n.cfg.Store.FinishExecution(ctx, d.Name, o)
	if longrun.IsCode(err, longrun.ENOTFOUND) {
		// Not one of ours (or a start that was rolled back): nothing to
		// record, and retrying would not change that.
		log.WarnContext(ctx, "status change for an unknown execution ignored")
		return emptyObject, nil
	}
	if err != nil {
		return nil, fmt.Errorf("finish execution %s: %w", d.Name, err)
	}
	n.logOutcome(ctx, e, recorded, "status change")
	// A FAILED event normally follows FinalizeFailure, whose deliver state
	// machine is already running: restart delivery only if it has stalled.
	kick := recorded || !delivery.InProgress(e.Webhook, n.cfg.Clock.Now())
	if err := n.ensureDelivery(ctx, e, kick); err != nil {
		return nil, err
	}
	return emptyObject, nil
}

// ResumeDelivery restarts the webhook delivery of execution id if it is
// pending and stalled (its loop ended without delivering: its notify calls
// failed through all of the deliver machine's retries, say on a full
// disk); a delivery that is running, ended, or not yet started is left as
// it is. longrun dev calls it for every stalled delivery once a minute, so
// delivery resumes by itself once the cause is gone.
func (n *Notifier) ResumeDelivery(ctx context.Context, id string) error {
	e, err := n.cfg.Store.GetExecution(ctx, "", id)
	if err != nil {
		return fmt.Errorf("get execution %s: %w", id, err)
	}
	if e.Webhook == nil || e.Webhook.State != longrun.DeliveryPending || delivery.InProgress(e.Webhook, n.cfg.Clock.Now()) {
		return nil
	}
	n.log.InfoContext(ctx, "resuming a stalled webhook delivery", "execution_id", id, "delivery", delivery.Describe(*e.Webhook))
	return n.ensureDelivery(ctx, e, true)
}

// Ended sends the webhook of e, an execution that ended outside the state
// machines (internal/settle fails a start that can no longer run): as for a
// status change, its first attempt, and the deliver state machine while
// attempts remain. recorded says whether this caller recorded the outcome;
// a delivery already under way is then left to its loop.
func (n *Notifier) Ended(ctx context.Context, e *longrun.Execution, recorded bool) error {
	n.logOutcome(ctx, e, recorded, "settle")
	return n.ensureDelivery(ctx, e, recorded || !delivery.InProgress(e.Webhook, n.cfg.Clock.Now()))
}

// ensureDelivery makes the first attempt of an ended execution's webhook if
// none was made, and starts the deliver state machine while attempts remain.
// kick also restarts it for a delivery already pending.
func (n *Notifier) ensureDelivery(ctx context.Context, e *longrun.Execution, kick bool) error {
	if e.CallbackURL == "" || !e.Status.Terminal() {
		return nil
	}
	if e.Webhook == nil {
		d, err := n.attempt(ctx, e, longrun.Delivery{
			EventID: EventID(e.ID),
			Type:    longrun.EventTypeFor(e.Status),
			State:   longrun.DeliveryPending,
		})
		if err != nil {
			return err
		}
		e.Webhook = &d
		kick = true
	}
	if e.Webhook.State != longrun.DeliveryPending || !kick {
		return nil
	}
	if n.cfg.Redeliver == nil {
		return fmt.Errorf("webhook of %s needs another attempt, but notify has no Redeliver", e.ID)
	}
	now := n.cfg.Clock.Now()
	save := func(d longrun.Delivery) error { return n.cfg.Store.SaveDelivery(ctx, e.ID, d) }
	d := *e.Webhook
	if !delivery.InProgress(&d, now) {
		// Nobody made the attempt that was due: the round's loop is gone.
		d = delivery.NextRound(d, now)
		if err := save(d); err != nil {
			return fmt.Errorf("start round %d of the webhook of %s: %w", d.Round, e.ID, err)
		}
	}
	// Starting a running round's loop again (a retried finalize) starts
	// nothing new; a round whose loop has ended gives way to the next.
	d, err := delivery.StartRound(d, now, save, func(round int) error { return n.cfg.Redeliver(ctx, e.ID, round) })
	e.Webhook = &d
	if err != nil {
		return fmt.Errorf("start webhook delivery of %s: %w", e.ID, err)
	}
	return nil
}

// deliver makes one more attempt if one is due, and says when the next one
// is. A delivery that has ended (delivered, or failed: schedule exhausted or
// 410 Gone) is done: a leftover or duplicate deliver loop must not send it
// again. A redeliver request sets it pending before starting a loop.
func (n *Notifier) deliver(ctx context.Context, id string) (json.RawMessage, error) {
	e, err := n.cfg.Store.GetExecution(ctx, "", id)
	if longrun.IsCode(err, longrun.ENOTFOUND) {
		n.log.WarnContext(ctx, "deliver for an unknown execution", "execution_id", id)
		return answer(longrun.DeliverResult{Done: true})
	}
	if err != nil {
		return nil, fmt.Errorf("get execution %s: %w", id, err)
	}
	if e.CallbackURL == "" || !e.Status.Terminal() {
		return answer(longrun.DeliverResult{Done: true})
	}
	d := longrun.Delivery{EventID: EventID(e.ID), Type: longrun.EventTypeFor(e.Status), State: longrun.DeliveryPending}
	if e.Webhook != nil {
		d = *e.Webhook
	}
	switch {
	case d.State != longrun.DeliveryPending:
		return answer(longrun.DeliverResult{Done: true})
	case n.cfg.Clock.Now().Add(dueSlack).Before(d.NextAttempt):
		// Early (a retried invocation, or clocks apart): send nothing.
		return answer(longrun.DeliverResult{RetryAt: formatRetryAt(d.NextAttempt)})
	}
	d, err = n.attempt(ctx, e, d)
	if err != nil {
		return nil, err
	}
	if d.State != longrun.DeliveryPending {
		return answer(longrun.DeliverResult{Done: true})
	}
	return answer(longrun.DeliverResult{RetryAt: formatRetryAt(d.NextAttempt)})
}

// attempt sends the webhook once, records the attempt and returns the
// delivery as saved. Only a store failure is an error.
func (n *Notifier) attempt(ctx context.Context, e *longrun.Execution, d longrun.Delivery) (longrun.Delivery, error) {
	var secrets []string
	tenant, err := n.cfg.Tenants.GetTenant(ctx, e.Tenant)
	switch {
	case err == nil:
		secrets = tenant.ActiveSecrets(n.cfg.Clock.Now())
	case longrun.IsCode(err, longrun.ENOTFOUND):
		// No tenant, no secret: the attempt is recorded as failed (and
		// unsent) rather than failing notify forever.
	default:
		return d, fmt.Errorf("get tenant %s of execution %s: %w", e.Tenant, e.ID, err)
	}
	body := n.body(ctx, e)
	r := n.cfg.Sender.Attempt(ctx, e.CallbackURL, secrets, d.EventID, body)
	d = n.cfg.Schedule.Record(d, r, n.cfg.Clock.Now())
	if err := n.cfg.Store.SaveDelivery(ctx, e.ID, d); err != nil {
		return d, fmt.Errorf("save webhook delivery of %s: %w", e.ID, err)
	}
	n.log.InfoContext(ctx, "webhook attempt",
		"execution_id", e.ID, "event_id", d.EventID, "status_code", r.Attempt.StatusCode,
		"latency", r.Attempt.Latency, "error", r.Attempt.Error, "delivery", delivery.Describe(d))
	return d, nil
}

// body is the webhook payload. Output over ThinOver is left out and
// describeUrl says where to read it.
func (n *Notifier) body(ctx context.Context, e *longrun.Execution) []byte {
	ev := webhook.Event{
		Type:      longrun.EventTypeFor(e.Status),
		Timestamp: e.StopDate.UTC(),
		Data: webhook.Data{
			ExecutionARN: e.ARN,
			ExecutionID:  e.ID,
			Job:          e.Job,
			Status:       e.Status,
			Output:       e.Output,
			Error:        e.Error,
			Cause:        e.Cause,
			StartDate:    e.StartDate.UTC(),
			StopDate:     e.StopDate.UTC(),
		},
	}
	thin := func() {
		ev.Data.Output = nil
		if n.cfg.DescribeURL != nil {
			ev.Data.DescribeURL = n.cfg.DescribeURL(e.ID)
		}
	}
	if len(e.Output) > n.cfg.ThinOver {
		thin()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		// Only an output that is not JSON can fail here; the worker refuses
		// those, but a webhook must still go out.
		n.log.ErrorContext(ctx, "webhook output is not JSON; sending it thin", "execution_id", e.ID, "error", err)
		thin()
		b, _ = json.Marshal(ev)
	}
	return b
}

func (n *Notifier) logOutcome(ctx context.Context, e *longrun.Execution, recorded bool, via string) {
	if recorded {
		n.log.InfoContext(ctx, "outcome recorded", "execution_id", e.ID, "status", e.Status, "via", via)
		return
	}
	n.log.InfoContext(ctx, "outcome already recorded", "execution_id", e.ID, "status", e.Status, "via", via)
}

// formatRetryAt writes the time the deliver state machine's Wait reads: RFC
// 3339 in UTC, whole seconds (the schedule rounds up).
func formatRetryAt(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func answer(r longrun.DeliverResult) (json.RawMessage, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, errors.New("encode deliver result: " + err.Error())
	}
	return b, nil
}
