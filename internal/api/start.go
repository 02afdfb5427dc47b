package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/jsonscan"
)

type startRequest struct {
	Input       json.RawMessage `json:"input"`
	CallbackURL string          `json:"callbackUrl"`
	Name        string          `json:"name"`
	// Job is the kind to run; "" the default. omitempty keeps the
	// idempotency hash of a request without it what it was before kinds.
	Job string `json:"job,omitempty"`
}

const startFields = `"input" (required), "job", "callbackUrl", "name"`

type startResponse struct {
	ExecutionARN string         `json:"executionArn"`
	ExecutionID  string         `json:"executionId"`
	Status       longrun.Status `json:"status"`
	StartDate    time.Time      `json:"startDate"`
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// handleStart creates an execution and starts its state machine.
//
// The record is written before the orchestration starts, so describe never
// misses a running execution and the Idempotency-Key is claimed atomically by
// the store. If the start fails, the record is deleted and the client told to
// retry. If the process dies between the two writes, the client's retry with
// the same key is a replay of a RUNNING execution, and StartExecution is
// called again: it is idempotent, so that heals the execution. Without a
// retry, a store with a start-pending marker (StartConfirmer: dynamostore)
// keeps it on the record, and internal/settle starts or fails the execution.
// With a Config.Starter (longrun dev) the two writes are one commit and that
// hole does not exist.
func (s *server) handleStart(w http.ResponseWriter, r *http.Request) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	var req startRequest
	if err := decodeBody(r, &req, startFields); err != nil {
		return err
	}
	if err := s.validateStart(&req); err != nil {
		return err
	}
	kind, err := s.kind(req)
	if err != nil {
		return err
	}

	now := s.clock.Now().UTC()
	id := longrun.NewExecutionID()
	e := &longrun.Execution{
		ID: id, ARN: s.cfg.Orchestrator.ExecutionARN(id), Tenant: tenantOf(r), Name: req.Name, Job: kind,
		Status: longrun.StatusRunning, Input: req.Input, CallbackURL: req.CallbackURL, StartDate: now,
	}
	state := s.stateInput(e)
	// Sized without the backstop and the queue URL: together under 200
	// bytes, they fit in the StateOverheadBytes kept for what the Work
	// state adds (the task token), which the state input itself does not
	// carry; so the limit a client meets depends on its input alone.
	sized := state
	sized.BackstopSeconds, sized.QueueURL = 0, ""
	size, err := stateInputSize(sized)
	if err != nil {
		return err
	}
	if limit := longrun.MaxInputBytes - longrun.StateOverheadBytes; size > limit {
		return longrun.Errorf(longrun.ETOOLARGE,
			"the execution input is %d bytes as the state machine's input; the limit is %d bytes (the 256 KiB Step Functions payload limit less %d bytes for the task token and ids that travel with it): pass a reference to large data instead",
			size, limit, longrun.StateOverheadBytes)
	}
	if key != "" {
		e.IdempotencyKey = key
		e.RequestHash = requestHash(req)
	}

	var (
		stored   *longrun.Execution
		replayed bool
	)
	if s.cfg.Starter != nil {
		stored, replayed, err = s.cfg.Starter.CreateAndStart(r.Context(), e, state)
	} else {
		stored, replayed, err = s.cfg.Executions.CreateExecution(r.Context(), e)
	}
	switch {
	case longrun.IsCode(err, longrun.ECONFLICT):
		return longrun.Errorf(longrun.ECONFLICT, "Idempotency-Key %q was used in the last 24 hours with a different request body; use a new key for a new request", key)
	case err != nil:
		return fmt.Errorf("create execution %s: %w", id, asUnavailable(err))
	}
	setExecution(r, stored.ID)

	if replayed {
		if stored.Status == longrun.StatusRunning {
			err := s.cfg.Orchestrator.StartExecution(r.Context(), s.stateInput(stored))
			if err != nil && !longrun.IsCode(err, longrun.EDUPLICATE) {
				return fmt.Errorf("restart replayed execution %s: %w", stored.ID, err)
			}
			s.confirmStarted(r, stored.ID)
		}
		w.Header().Set("Idempotent-Replayed", "true")
		s.log.InfoContext(r.Context(), "start replayed", "execution_id", stored.ID, "tenant", stored.Tenant)
		return s.accepted(w, stored)
	}

	if s.cfg.Starter != nil {
		s.log.InfoContext(r.Context(), "execution started", "execution_id", id, "tenant", e.Tenant)
		return s.accepted(w, stored)
	}
	// EDUPLICATE: the id is fresh, so the execution that exists is this one,
	// started by a concurrent replay of the same Idempotency-Key.
	if err := s.cfg.Orchestrator.StartExecution(r.Context(), state); err != nil && !longrun.IsCode(err, longrun.EDUPLICATE) {
		if derr := s.cfg.Executions.DeleteExecution(detached(r.Context()), id); derr != nil {
			// The record stays RUNNING with no orchestration; a retry with
			// the same key replays it and starts it then.
			s.log.ErrorContext(r.Context(), "delete execution after failed start", "err", derr, "execution_id", id)
		}
		return fmt.Errorf("start execution %s: %w", id, asUnavailable(err))
	}
	s.confirmStarted(r, id)
	s.log.InfoContext(r.Context(), "execution started", "execution_id", id, "tenant", e.Tenant, "job", e.Job)
	return s.accepted(w, stored)
}

// StartConfirmer is a store whose new RUNNING records carry a start-pending
// marker until StartExecution is known to have run (dynamostore): a record
// whose start Lambda died between the two steps keeps it, and
// internal/settle finds and settles it.
type StartConfirmer interface {
	ConfirmStarted(ctx context.Context, id string) error
}

// confirmStarted clears id's start-pending marker. A failure is only
// logged: the execution runs, and the sweep clears the marker when it finds
// the execution started.
func (s *server) confirmStarted(r *http.Request, id string) {
	c, ok := s.cfg.Executions.(StartConfirmer)
	if !ok {
		return
	}
	if err := c.ConfirmStarted(detached(r.Context()), id); err != nil {
		s.log.WarnContext(r.Context(), "clear the start-pending marker (the sweep will)", "err", err, "execution_id", id)
	}
}

func (s *server) accepted(w http.ResponseWriter, e *longrun.Execution) error {
	w.Header().Set("Location", "/executions/"+e.ID)
	if e.Status == longrun.StatusRunning {
		w.Header().Set("Retry-After", retryAfter(s.cfg.RetryAfter))
	}
	writeJSON(w, http.StatusAccepted, startResponse{ExecutionARN: e.ARN, ExecutionID: e.ID, Status: e.Status, StartDate: e.StartDate.UTC()})
	return nil
}

// asUnavailable marks a failure of a dependency (the store, the
// orchestrator) as retryable (503) unless it already says what it is.
func asUnavailable(err error) error {
	if longrun.ErrorCode(err) != longrun.EINTERNAL {
		return err
	}
	return fmt.Errorf("%w: %w", longrun.Errorf(longrun.EUNAVAILABLE, "dependency unavailable"), err)
}

// stateInput is what the state machine starts with: the kind travels in it
// to the worker, with its limits (the kind's Timeout, if it has one, is the
// job's own limit, which the worker enforces from receipt; the Work state
// gets only a backstop of that plus the queue wait), and the queue the kind's
// tasks go to.
func (s *server) stateInput(e *longrun.Execution) longrun.StateInput {
	return s.cfg.Plan().StateInput(e)
}

// Plan is how a deployment turns an execution into its state machine's
// input: its limits, job kinds, queue wait and queue routing. A start and a
// cut start's settling (internal/settle) build the same input from it.
type Plan struct {
	Limits    longrun.Limits
	Jobs      *longrun.Registry // nil: limits as they are, every task to Queues.Jobs
	QueueWait time.Duration
	Queues    Routing
}

// Plan is the Plan of the deployment c configures.
func (c Config) Plan() Plan {
	return Plan{Limits: c.Limits, Jobs: c.Jobs, QueueWait: c.QueueWait, Queues: c.Queues}
}

// StateInput is the state machine's input for execution e: its id, ARN,
// input and kind, the limits of its kind (the kind's Timeout is the job's
// own limit, which the worker enforces from receipt), the Work state's
// backstop (that limit plus the queue wait) and the queue of its kind.
func (p Plan) StateInput(e *longrun.Execution) longrun.StateInput {
	limits := p.Limits
	if p.Jobs != nil {
		if k, ok := p.Jobs.Lookup(e.Job); ok {
			limits = k.Limits(limits)
		}
	}
	return longrun.StateInput{ExecutionID: e.ID, ExecutionARN: e.ARN, Input: e.Input, Limits: limits, Job: e.Job,
		BackstopSeconds: longrun.Backstop(limits.TimeoutSeconds, p.QueueWait),
		QueueURL:        p.Queues.QueueFor(time.Duration(limits.TimeoutSeconds) * time.Second)}
}

// kind checks the request's job kind and its input against the kind's
// InputSchema, and returns the kind's name ("" without a registry).
func (s *server) kind(req startRequest) (string, error) {
	if s.cfg.Jobs == nil {
		if req.Job != "" {
			return "", longrun.Errorf(longrun.EINVALID, `"job" %q is not a kind this deployment runs: it has no job kinds registered`, req.Job)
		}
		return "", nil
	}
	k, ok := s.cfg.Jobs.Lookup(req.Job)
	if !ok {
		return "", longrun.Errorf(longrun.EINVALID, `"job" %q is not a kind this deployment runs; known kinds: %s (omit "job" for %q)`,
			req.Job, quoted(s.cfg.Jobs.Kinds()), firstOr(s.cfg.Jobs.Kinds()))
	}
	if err := k.ValidateInput(req.Input); err != nil {
		return "", err
	}
	return k.Name, nil
}

func quoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func firstOr(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// stateInputSize is the size of in as JSON. in.Input is canonical JSON
// (canonicalJSON), which json.Marshal copies as it is: it is counted, not
// encoded again.
func stateInputSize(in longrun.StateInput) (int, error) {
	input := in.Input
	in.Input = nil // encodes as null
	b, err := json.Marshal(in)
	if err != nil {
		return 0, fmt.Errorf("encode state input: %w", err)
	}
	if input == nil {
		return len(b), nil
	}
	return len(b) - len("null") + len(input), nil
}

func (s *server) validateStart(req *startRequest) error {
	if len(req.Input) == 0 {
		return longrun.Errorf(longrun.EINVALID, `"input" is required: any JSON value, e.g. {"input": {}}`)
	}
	// Stored, sized and hashed in one canonical form (compact, object keys
	// sorted, numbers as written), so neither whitespace nor key order
	// changes the size check or the idempotency hash, and the job gets
	// exactly the input that was hashed.
	if !jsonscan.Valid(req.Input) {
		return longrun.Errorf(longrun.EINVALID, `"input" is not valid JSON`)
	}
	if d := jsonDepth(req.Input); d > MaxInputDepth {
		return longrun.Errorf(longrun.EINVALID, `"input" is nested %d levels deep; the limit is %d (the state machine wraps the input in a few more levels, and JSON decoders stop at 10,000): flatten it`, d, MaxInputDepth)
	}
	req.Input = canonicalJSON(req.Input)
	if len(req.Name) > longrun.MaxNameLength || (req.Name != "" && !validName.MatchString(req.Name)) {
		return longrun.Errorf(longrun.EINVALID, `"name" must be 1 to %d characters of A-Z, a-z, 0-9, '_' and '-'`, longrun.MaxNameLength)
	}
	if req.CallbackURL != "" {
		if err := s.cfg.CheckCallbackURL(req.CallbackURL); err != nil {
			return longrun.Errorf(longrun.EINVALID, `"callbackUrl" is not accepted: %s`, callbackReason(err))
		}
	}
	return nil
}

// callbackReason is the checker's message; a domain error's message is used
// bare, other errors' text whole (the checker's errors are meant for clients).
func callbackReason(err error) string {
	if longrun.ErrorCode(err) != longrun.EINTERNAL {
		return longrun.ErrorMessage(err)
	}
	return err.Error()
}

// checkHTTPURL is the default callback check: an absolute http(s) URL.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("want an absolute http(s) URL, got %q", raw)
	}
	return nil
}

// idempotencyKey returns the request's Idempotency-Key, "" if none.
func idempotencyKey(r *http.Request) (string, error) {
	vs := r.Header.Values("Idempotency-Key")
	if len(vs) == 0 {
		return "", nil
	}
	key := vs[0]
	if len(vs) > 1 || key == "" || len(key) > longrun.MaxIdempotencyKeyLength {
		return "", longrun.Errorf(longrun.EINVALID, "Idempotency-Key must be one value of 1 to %d visible ASCII characters", longrun.MaxIdempotencyKeyLength)
	}
	for i := range len(key) {
		if key[i] < 0x21 || key[i] > 0x7e {
			return "", longrun.Errorf(longrun.EINVALID, "Idempotency-Key must be one value of 1 to %d visible ASCII characters (no spaces)", longrun.MaxIdempotencyKeyLength)
		}
	}
	return key, nil
}

// requestHash identifies a start request's content for the Idempotency-Key:
// the SHA-256 of its canonical JSON (input with sorted keys, callbackUrl, name).
func requestHash(req startRequest) string {
	b, _ := json.Marshal(req) // cannot fail: the input was already re-encoded
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// canonicalJSON re-encodes raw (valid JSON) compactly with object keys sorted
// (encoding/json sorts map keys) and numbers kept as written. As decoding
// does, a repeated key keeps its last value and invalid UTF-8 becomes
// U+FFFD: the canonical form is what the job receives, so two requests that
// hash the same run the same input.
//
// Most inputs are in that form already (all but key order is what clients'
// encoders write): then they are checked in one pass and kept as they are.
func canonicalJSON(raw json.RawMessage) json.RawMessage {
	if jsonscan.Canonical(raw) {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}

// MaxInputDepth is the deepest nesting of arrays and objects an execution
// input may have. The state machine nests the input a few levels deeper
// (the state input, the task message, history events), and Go's
// encoding/json refuses documents nested past 10,000 levels, so an input
// near that was accepted and then failed inside the engine; this bound
// leaves a wide margin and is far above any real input.
const MaxInputDepth = 1000

// jsonDepth is the deepest nesting of arrays and objects in raw, valid JSON.
func jsonDepth(raw []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range raw {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}
