package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/client"
)

// maxBodyBytes caps any request body. It is above MaxInputBytes so that an
// input just over the limit gets the precise 413 of the start handler rather
// than this cruder one, and low enough to bound memory per request.
const maxBodyBytes = 2 * longrun.MaxInputBytes

// decodeBody decodes r's JSON body into v, refusing unknown fields and
// trailing data, with messages that say what to fix. fields lists the
// accepted ones for the unknown-field message.
func decodeBody(r *http.Request, v any, fields string) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return longrun.Errorf(longrun.EINVALID, "Content-Type is %q: send the body as application/json", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err, fields)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return longrun.Errorf(longrun.EINVALID, "malformed JSON body: more data after the JSON object")
	}
	return nil
}

func bodyError(err error, fields string) error {
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		return longrun.Errorf(longrun.EINVALID, "empty body: send a JSON object with %s", fields)
	case errors.As(err, &tooLarge):
		return longrun.Errorf(longrun.ETOOLARGE, "request body over %d bytes; the execution input limit is %d bytes (256 KiB)", tooLarge.Limit, longrun.MaxInputBytes)
	case errors.As(err, &syntax):
		return longrun.Errorf(longrun.EINVALID, "malformed JSON body at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return longrun.Errorf(longrun.EINVALID, "the body must be a JSON object with %s", fields)
		}
		return longrun.Errorf(longrun.EINVALID, "field %q must be a JSON %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return longrun.Errorf(longrun.EINVALID, "unknown field %s in the body; the fields are %s", name, fields)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return longrun.Errorf(longrun.EINVALID, "malformed JSON body: it ends too early")
	}
	return longrun.Errorf(longrun.EINVALID, "malformed JSON body: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice":
		return "array"
	case "map", "struct":
		return "object"
	case "bool":
		return "boolean"
	}
	return "number"
}

// describeJSON is an execution as describe shows it, in the wire types of
// the public client package, so what the server writes and what the client
// reads are one definition.
func describeJSON(e *longrun.Execution) client.Execution {
	out := client.Execution{
		ExecutionARN: e.ARN, ExecutionID: e.ID, Name: e.Name, Job: e.Job, Status: string(e.Status),
		Input: e.Input, Output: e.Output, Error: e.Error, Cause: e.Cause,
		CallbackURL: e.CallbackURL, StartDate: e.StartDate.UTC(), StopDate: timePtr(e.StopDate),
	}
	if p := e.Progress; p != nil {
		out.Progress = &client.Progress{Percent: p.Percent, Message: p.Message, UpdatedAt: p.UpdatedAt}
	}
	if d := e.Webhook; d != nil {
		wh := &client.Webhook{ID: d.EventID, Type: string(d.Type), State: string(d.State), Attempts: []client.Attempt{}, NextAttempt: timePtr(d.NextAttempt)}
		for _, a := range d.Attempts {
			wh.Attempts = append(wh.Attempts, client.Attempt{At: a.At.UTC(), StatusCode: a.StatusCode, LatencyMs: a.Latency.Milliseconds(), Error: a.Error})
		}
		out.Webhook = wh
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// executionRef names an execution in a POST body: by ARN or by id.
type executionRef struct {
	ExecutionARN string `json:"executionArn"`
	ExecutionID  string `json:"executionId"`
}

// id returns the execution id the reference names: executionId, or the last
// segment of executionArn (the Step Functions execution name).
func (ref executionRef) id() (string, error) {
	switch {
	case ref.ExecutionID == "" && ref.ExecutionARN == "":
		return "", longrun.Errorf(longrun.EINVALID, "name the execution with executionArn or executionId")
	case ref.ExecutionARN == "":
		return ref.ExecutionID, nil
	}
	id := ref.ExecutionARN[strings.LastIndexByte(ref.ExecutionARN, ':')+1:]
	if ref.ExecutionID != "" && ref.ExecutionID != id {
		return "", longrun.Errorf(longrun.EINVALID, "executionArn and executionId name different executions; send one of them")
	}
	if id == "" {
		return "", notFound(ref.ExecutionARN)
	}
	return id, nil
}

// lookup reads the tenant's execution a POST body names. An executionArn must
// be the execution's own ARN, as recorded when it started: one made up, or of
// another deployment, is unknown.
func (s *server) lookup(r *http.Request, ref executionRef) (*longrun.Execution, error) {
	id, err := ref.id()
	if err != nil {
		return nil, err
	}
	e, err := s.get(r, id)
	if err != nil {
		return nil, err
	}
	if ref.ExecutionARN != "" && ref.ExecutionARN != e.ARN {
		return nil, notFound(ref.ExecutionARN)
	}
	return e, nil
}

// notFound is the answer for unknown and foreign executions alike.
func notFound(id string) error {
	return longrun.Errorf(longrun.ENOTFOUND, "execution %s does not exist", id)
}

// get reads the tenant's execution; any store error is wrapped with the id.
func (s *server) get(r *http.Request, id string) (*longrun.Execution, error) {
	setExecution(r, id)
	tenant := tenantOf(r)
	if tenant == "" {
		// The store reads "" as "any tenant" (for notify and the worker):
		// a request must never reach it without one.
		return nil, errors.New("api: a request without a tenant reached the store")
	}
	e, err := s.cfg.Executions.GetExecution(r.Context(), tenant, id)
	if longrun.IsCode(err, longrun.ENOTFOUND) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get execution %s: %w", id, asUnavailable(err))
	}
	return e, nil
}
