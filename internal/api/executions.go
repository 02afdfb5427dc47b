package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/client"
	"github.com/longrun/longrun/internal/delivery"
	"github.com/longrun/longrun/internal/jsonscan"
)

// describe, list, stop and redeliver: the routes that act on executions that
// exist. All of them read the store, never the orchestrator, to find an
// execution, so another tenant's execution is a 404 exactly like an unknown one.

func (s *server) handleDescribePost(w http.ResponseWriter, r *http.Request) error {
	var ref executionRef
	if err := decodeBody(r, &ref, `"executionArn" or "executionId"`); err != nil {
		return err
	}
	e, err := s.lookup(r, ref)
	if err != nil {
		return err
	}
	s.writeDescribed(w, r, e)
	return nil
}

func (s *server) handleDescribeGet(w http.ResponseWriter, r *http.Request) error {
	e, err := s.get(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.writeDescribed(w, r, e)
	return nil
}

// writeDescribed is describe's answer: the record, and for a running
// execution the state its state machine is in where Config.CurrentState
// can tell.
func (s *server) writeDescribed(w http.ResponseWriter, r *http.Request, e *longrun.Execution) {
	if e.Status != longrun.StatusRunning || s.cfg.CurrentState == nil {
		s.writeExecution(w, http.StatusOK, e)
		return
	}
	out := describeJSON(e)
	out.State = s.cfg.CurrentState(r.Context(), e)
	w.Header().Set("Retry-After", retryAfter(s.cfg.RetryAfter))
	writeExecutionJSON(w, http.StatusOK, out)
}

// writeExecution answers with the execution and, while it runs, when to poll.
func (s *server) writeExecution(w http.ResponseWriter, status int, e *longrun.Execution) {
	if e.Status == longrun.StatusRunning {
		w.Header().Set("Retry-After", retryAfter(s.cfg.RetryAfter))
	}
	writeExecutionJSON(w, status, describeJSON(e))
}

// writeExecutionJSON is writeJSON for an execution, which carries its input
// and output (up to 256 KiB each): json.Encoder would compact and escape
// both again, a slow pass each, though they are stored in the form it
// writes (the input canonical, the output as the state machine wrote it).
// When jsonscan.Canonical says so, they are copied in as they are instead:
// the bytes are the same.
func writeExecutionJSON(w http.ResponseWriter, status int, e client.Execution) {
	b, ok := marshalExecution(e)
	if !ok {
		writeJSON(w, status, e)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b) // the client may have gone; nothing to do then
}

// marshalExecution is what json.Encoder writes for e, newline included,
// with e's input and output spliced in rather than encoded (ok false when
// they are not already in that form). The placeholders are found where
// they must be: "input" follows string fields only, whose quotes inside
// are escaped, and "output" comes right after it.
func marshalExecution(e client.Execution) ([]byte, bool) {
	in, out := e.Input, e.Output
	if len(in) == 0 || !jsonscan.Canonical(in) || len(out) > 0 && !jsonscan.Canonical(out) {
		return nil, false
	}
	e.Input = json.RawMessage("0")
	if len(out) > 0 {
		e.Output = json.RawMessage("0")
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, false
	}
	const inKey, outKey = `,"input":0`, `,"output":0`
	i := bytes.Index(b, []byte(inKey))
	if i < 0 {
		return nil, false
	}
	i += len(inKey) - 1 // at the placeholder
	res := make([]byte, 0, len(b)+len(in)+len(out)+1)
	res = append(append(res, b[:i]...), in...)
	rest := b[i+1:]
	if len(out) > 0 {
		if !bytes.HasPrefix(rest, []byte(outKey)) {
			return nil, false
		}
		res = append(append(res, outKey[:len(outKey)-1]...), out...)
		rest = rest[len(outKey):]
	}
	return append(append(res, rest...), '\n'), true
}

// listResponse is GET /executions' answer, in the client's wire types.
type listResponse = client.Page

// DefaultListLimit is the page size of GET /executions without ?limit.
const DefaultListLimit = 20

func (s *server) handleList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	lq := longrun.ListQuery{Limit: DefaultListLimit, Status: longrun.Status(q.Get("status")), Job: q.Get("job"), NextToken: q.Get("nextToken")}
	if lq.Status != "" && !lq.Status.Valid() {
		return longrun.Errorf(longrun.EINVALID, "status %q is not one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED", lq.Status)
	}
	// Any kind name, registered now or not: executions of a kind since
	// removed are still listed by it.
	if lq.Job != "" && !longrun.ValidKindName(lq.Job) {
		return longrun.Errorf(longrun.EINVALID, "job %q is not a job kind name: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter", lq.Job)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > longrun.MaxListLimit {
			return longrun.Errorf(longrun.EINVALID, "limit %q must be a whole number from 1 to %d", v, longrun.MaxListLimit)
		}
		lq.Limit = n
	}
	page, err := s.cfg.Executions.ListExecutions(r.Context(), tenantOf(r), lq)
	if err != nil {
		if longrun.IsCode(err, longrun.EINVALID) {
			return longrun.Errorf(longrun.EINVALID, "nextToken is not one this API returned; omit it to start from the newest")
		}
		return fmt.Errorf("list executions: %w", asUnavailable(err))
	}
	out := listResponse{Executions: make([]client.Summary, 0, len(page.Executions)), NextToken: page.NextToken}
	for _, e := range page.Executions {
		out.Executions = append(out.Executions, client.Summary{
			ExecutionARN: e.ARN, ExecutionID: e.ID, Name: e.Name, Job: e.Job, Status: string(e.Status),
			StartDate: e.StartDate.UTC(), StopDate: timePtr(e.StopDate),
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type stopRequest struct {
	executionRef
	Error string `json:"error"`
	Cause string `json:"cause"`
}

func (s *server) handleStopPost(w http.ResponseWriter, r *http.Request) error {
	var req stopRequest
	if err := decodeBody(r, &req, `"executionArn" or "executionId", "error", "cause"`); err != nil {
		return err
	}
	if utf8.RuneCountInString(req.Error) > longrun.MaxErrorNameLength || utf8.RuneCountInString(req.Cause) > longrun.MaxCauseLength {
		return longrun.Errorf(longrun.EINVALID, `"error" may have up to %d characters and "cause" up to %d (Step Functions' limits)`, longrun.MaxErrorNameLength, longrun.MaxCauseLength)
	}
	e, err := s.lookup(r, req.executionRef)
	if err != nil {
		return err
	}
	return s.stop(w, r, e, req.Error, req.Cause)
}

func (s *server) handleStopDelete(w http.ResponseWriter, r *http.Request) error {
	e, err := s.get(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.stop(w, r, e, "", "")
}

// stop stops the orchestration, then records ABORTED at once so describe
// shows it without waiting for notify, which sends the execution.aborted
// webhook when the orchestrator's status-change event reaches it.
func (s *server) stop(w http.ResponseWriter, r *http.Request, e *longrun.Execution, errName, cause string) error {
	id := e.ID
	if e.Status.Terminal() {
		return notRunning(e)
	}
	if errName == "" {
		errName = longrun.ErrNameStopped
	}
	if s.cfg.Stopper != nil {
		stopped, err := s.cfg.Stopper.StopAndRecord(r.Context(), e, longrun.Outcome{
			Status: longrun.StatusAborted, Error: errName, Cause: cause, StopDate: s.clock.Now().UTC(),
		})
		switch {
		case longrun.IsCode(err, longrun.ENOTRUNNING):
			return longrun.Errorf(longrun.ENOTRUNNING, "execution %s has already ended; describe it for the outcome", id)
		case err != nil:
			return fmt.Errorf("stop execution %s: %w", id, asUnavailable(err))
		}
		s.log.InfoContext(r.Context(), "execution stopped", "execution_id", id, "recorded", true)
		s.writeExecution(w, http.StatusOK, stopped)
		return nil
	}
	if err := s.cfg.Orchestrator.StopExecution(r.Context(), e.ARN, errName, cause); err != nil {
		if longrun.IsCode(err, longrun.ENOTRUNNING) {
			return longrun.Errorf(longrun.ENOTRUNNING, "execution %s has already ended; describe it for the outcome", id)
		}
		return fmt.Errorf("stop execution %s: %w", id, asUnavailable(err))
	}
	stopped, recorded, err := s.cfg.Executions.FinishExecution(detached(r.Context()), id, longrun.Outcome{
		Status: longrun.StatusAborted, Error: errName, Cause: cause, StopDate: s.clock.Now().UTC(),
	})
	if err != nil {
		// The orchestration is stopped; notify records ABORTED from the
		// status-change event, so describe catches up on its own.
		return fmt.Errorf("record stop of execution %s: %w", id, err)
	}
	if !recorded && stopped.Status != longrun.StatusAborted {
		// The job's outcome was recorded (Finalize) before the stop reached
		// the state machine: that outcome stands in describe and in the
		// webhook, so the stop did not happen as far as the client can see.
		// (Step Functions' own history ends ABORTED: docs/state-machine.md.)
		return longrun.Errorf(longrun.ENOTRUNNING, "execution %s ended %s before the stop took effect; describe it for the outcome", id, stopped.Status)
	}
	s.log.InfoContext(r.Context(), "execution stopped", "execution_id", id, "recorded", recorded)
	s.writeExecution(w, http.StatusOK, stopped)
	return nil
}

func notRunning(e *longrun.Execution) error {
	return longrun.Errorf(longrun.ENOTRUNNING, "execution %s has already ended with status %s", e.ID, e.Status)
}

// deliveryClaimer is a store that saves a delivery only if it is unchanged
// (sqlite.ExecutionStore).
type deliveryClaimer interface {
	SaveDeliveryIf(ctx context.Context, id string, prev, d longrun.Delivery) error
}

// handleRedeliver sends the final webhook of an ended execution again, with
// the same event id, so receivers that already processed it dedupe it.
func (s *server) handleRedeliver(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	e, err := s.get(r, id)
	if err != nil {
		return err
	}
	switch {
	case !e.Status.Terminal():
		return longrun.Errorf(longrun.ECONFLICT, "execution %s is still RUNNING: its webhook is sent when it ends", id)
	case e.CallbackURL == "":
		return longrun.Errorf(longrun.ECONFLICT, "execution %s has no callbackUrl, so there is no webhook to send", id)
	case e.Webhook == nil:
		return longrun.Errorf(longrun.ECONFLICT, "the webhook of execution %s has not been sent yet; it will be shortly", id)
	case delivery.InProgress(e.Webhook, s.clock.Now()):
		// A second round would run beside the first and send twice.
		return longrun.Errorf(longrun.ECONFLICT, "the webhook of execution %s is still being delivered: next attempt at %s", id, e.Webhook.NextAttempt.UTC().Format(time.RFC3339))
	}
	// A new round, driven by a deliver loop of its own name; the event (and
	// its webhook-id) is the same.
	now := s.clock.Now()
	save := func(d longrun.Delivery) error { return s.cfg.Executions.SaveDelivery(r.Context(), id, d) }
	d := delivery.NextRound(*e.Webhook, now)
	d.State, d.RoundAttempts = longrun.DeliveryPending, 0 // a whole schedule again
	// Claimed only if nobody changed the delivery since it was read: of
	// concurrent redelivers exactly one starts a round, the others get 409
	// (a store without the conditional save cannot promise that).
	claim := save
	if c, ok := s.cfg.Executions.(deliveryClaimer); ok {
		claim = func(d longrun.Delivery) error { return c.SaveDeliveryIf(r.Context(), id, *e.Webhook, d) }
	}
	if err := claim(d); err != nil {
		if longrun.IsCode(err, longrun.ECONFLICT) {
			return longrun.Errorf(longrun.ECONFLICT, "the webhook of execution %s is already being redelivered", id)
		}
		return fmt.Errorf("reset delivery of execution %s: %w", id, asUnavailable(err))
	}
	// A round whose loop already ran (a concurrent redeliver took it) gives
	// way to the next.
	d, err = delivery.StartRound(d, now, save, func(round int) error { return s.cfg.Orchestrator.Redeliver(r.Context(), id, round) })
	if err != nil {
		// No loop started: put the record back, or the client's retry would
		// be refused as "still being delivered" until the round went stale.
		// (Had the loop started after all, it finds the delivery ended.)
		if rerr := s.cfg.Executions.SaveDelivery(detached(r.Context()), id, *e.Webhook); rerr != nil {
			s.log.ErrorContext(r.Context(), "restore delivery after a failed redeliver", "err", rerr, "execution_id", id)
		}
		return fmt.Errorf("redeliver execution %s: %w", id, asUnavailable(err))
	}
	s.log.InfoContext(r.Context(), "webhook redelivery started", "execution_id", id, "event_id", d.EventID)
	e.Webhook = &d
	s.writeExecution(w, http.StatusAccepted, e)
	return nil
}
