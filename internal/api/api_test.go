package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/auth"
	"github.com/longrun/longrun/internal/fakeclock"
)

var t0 = time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)

var limits = longrun.Limits{TimeoutSeconds: 3600, HeartbeatSeconds: 60}

// harness is a server over in-memory ports, with two tenants.
type harness struct {
	h      http.Handler
	store  *executionStore
	orch   *orchestrator
	clock  *fakeclock.Clock
	acme   string // acme's API key
	globex string // globex's API key
	logs   *syncBuffer
	cfg    Config
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func setup(t testing.TB, configure ...func(*Config)) *harness {
	t.Helper()
	tenants := &tenantStore{keys: map[string]string{}}
	hs := &harness{
		store: newExecutionStore(), orch: &orchestrator{}, clock: fakeclock.At(t0),
		acme: auth.NewAPIKey(), globex: auth.NewAPIKey(), logs: &syncBuffer{},
	}
	_ = tenants.PutAPIKey(context.Background(), auth.HashKey(hs.acme), "acme")
	_ = tenants.PutAPIKey(context.Background(), auth.HashKey(hs.globex), "globex")
	hs.cfg = Config{
		Executions: hs.store, Tenants: tenants, Orchestrator: hs.orch,
		CheckCallbackURL: func(u string) error {
			if strings.Contains(u, "169.254.169.254") {
				return errors.New("the address 169.254.169.254 is link-local, which webhooks may not reach")
			}
			return checkHTTPURL(u)
		},
		Limits: limits, Clock: hs.clock,
		Logger: slog.New(slog.NewJSONHandler(hs.logs, nil)),
	}
	for _, c := range configure {
		c(&hs.cfg)
	}
	hs.h = NewServer(hs.cfg)
	return hs
}

// do sends a request as the holder of key ("" for none); headers are
// name, value pairs.
func (hs *harness) do(t *testing.T, method, path, key, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	hs.h.ServeHTTP(w, r)
	return w
}

// start starts an execution as acme and returns its id.
func (hs *harness) start(t *testing.T, body string) string {
	t.Helper()
	w := hs.do(t, "POST", "/start-execution", hs.acme, body)
	if w.Code != http.StatusAccepted {
		t.Fatalf("start: %d %s", w.Code, w.Body)
	}
	var res startResponse
	decode(t, w, &res)
	return res.ExecutionID
}

func decode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
}

// wantProblem checks w is a problem+json answer with status whose detail
// contains every one of details.
func wantProblem(t *testing.T, w *httptest.ResponseRecorder, status int, details ...string) problem {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p problem
	decode(t, w, &p)
	if p.Status != status || p.Title != http.StatusText(status) || !strings.HasPrefix(p.Type, problemTypePrefix) {
		t.Fatalf("problem %+v does not match status %d", p, status)
	}
	for _, d := range details {
		if !strings.Contains(p.Detail, d) {
			t.Fatalf("detail %q does not contain %q", p.Detail, d)
		}
	}
	return p
}

// running is a RUNNING execution of tenant, as the store would hold it.
func running(id, tenant string) longrun.Execution {
	return longrun.Execution{
		ID: id, ARN: arnPrefix + id, Tenant: tenant, Status: longrun.StatusRunning,
		Input: json.RawMessage(`{"seconds":3}`), StartDate: t0,
	}
}

func TestStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     string // "acme", "unknown" or "" for none
		body    string
		headers []string
		status  int
		details []string
	}{
		{name: "minimal", key: "acme", body: `{"input":{"seconds":3}}`, status: 202},
		{name: "all fields", key: "acme", body: `{"input":[1,2],"callbackUrl":"https://example.com/hook","name":"nightly-export_1"}`, status: 202},
		{name: "null input", key: "acme", body: `{"input":null}`, status: 202},
		{name: "malformed JSON", key: "acme", body: `{"input":`, status: 400, details: []string{"malformed JSON"}},
		{name: "syntax error", key: "acme", body: `{"input":{]}`, status: 400, details: []string{"malformed JSON body at byte"}},
		{name: "trailing data", key: "acme", body: `{"input":1} {}`, status: 400, details: []string{"more data"}},
		{name: "not an object", key: "acme", body: `[1]`, status: 400, details: []string{"JSON object"}},
		{name: "empty body", key: "acme", body: ``, status: 400, details: []string{"empty body"}},
		{name: "unknown field", key: "acme", body: `{"input":1,"callback":"https://x.example"}`, status: 400, details: []string{`unknown field "callback"`, `"callbackUrl"`}},
		{name: "wrong type", key: "acme", body: `{"input":1,"name":7}`, status: 400, details: []string{`"name" must be a JSON string`}},
		{name: "input missing", key: "acme", body: `{"name":"x"}`, status: 400, details: []string{`"input" is required`}},
		{name: "bad name", key: "acme", body: `{"input":1,"name":"has space"}`, status: 400, details: []string{`"name" must be 1 to 80`}},
		{name: "name too long", key: "acme", body: `{"input":1,"name":"` + strings.Repeat("a", 81) + `"}`, status: 400, details: []string{`"name"`}},
		{name: "name at limit", key: "acme", body: `{"input":1,"name":"` + strings.Repeat("a", 80) + `"}`, status: 202},
		{name: "callback refused", key: "acme", body: `{"input":1,"callbackUrl":"http://169.254.169.254/latest"}`, status: 400, details: []string{`"callbackUrl" is not accepted`, "link-local"}},
		{name: "callback not a URL", key: "acme", body: `{"input":1,"callbackUrl":"ftp://x"}`, status: 400, details: []string{"absolute http(s) URL"}},
		{name: "wrong content type", key: "acme", body: `{"input":1}`, headers: []string{"Content-Type", "text/plain"}, status: 400, details: []string{"application/json"}},
		{name: "idempotency key with space", key: "acme", body: `{"input":1}`, headers: []string{"Idempotency-Key", "a b"}, status: 400, details: []string{"visible ASCII"}},
		{name: "idempotency key too long", key: "acme", body: `{"input":1}`, headers: []string{"Idempotency-Key", strings.Repeat("k", 256)}, status: 400, details: []string{"Idempotency-Key"}},
		{name: "idempotency key at limit", key: "acme", body: `{"input":1}`, headers: []string{"Idempotency-Key", strings.Repeat("k", 255)}, status: 202},
		{name: "no API key", key: "", body: `{"input":1}`, status: 401, details: []string{"Authorization: Bearer <api key>"}},
		{name: "unknown API key", key: "unknown", body: `{"input":1}`, status: 401, details: []string{"unknown API key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t)
			key := map[string]string{"acme": hs.acme, "unknown": auth.NewAPIKey()}[tt.key]
			w := hs.do(t, "POST", "/start-execution", key, tt.body, tt.headers...)
			if tt.status != http.StatusAccepted {
				wantProblem(t, w, tt.status, tt.details...)
				if tt.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
				if n := hs.store.count(); n != 0 || len(hs.orch.started()) != 0 {
					t.Fatalf("a refused start left %d records and %d starts", n, len(hs.orch.started()))
				}
				return
			}
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var res startResponse
			decode(t, w, &res)
			if res.Status != longrun.StatusRunning || !res.StartDate.Equal(t0) || res.ExecutionARN != arnPrefix+res.ExecutionID {
				t.Fatalf("response %+v", res)
			}
			if got := w.Header().Get("Location"); got != "/executions/"+res.ExecutionID {
				t.Fatalf("Location %q", got)
			}
			if got := w.Header().Get("Retry-After"); got != "5" {
				t.Fatalf("Retry-After %q, want 5", got)
			}
			e, ok := hs.store.execution(res.ExecutionID)
			if !ok || e.Tenant != "acme" || e.Status != longrun.StatusRunning {
				t.Fatalf("stored %+v (found %v)", e, ok)
			}
			starts := hs.orch.started()
			if len(starts) != 1 || starts[0].ExecutionID != res.ExecutionID || starts[0].Limits != limits || !bytes.Equal(starts[0].Input, e.Input) {
				t.Fatalf("StartExecution calls %+v", starts)
			}
		})
	}
}

func TestStartInputLimit(t *testing.T) {
	t.Parallel()
	// The state input wraps the user's input with ids and limits; find that
	// overhead for a string input so the input can be sized to the byte.
	id := longrun.NewExecutionID()
	overhead, err := stateInputSize(longrun.StateInput{ExecutionID: id, ExecutionARN: arnPrefix + id, Input: json.RawMessage(`""`), Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	body := func(total int) string {
		return `{"input":"` + strings.Repeat("a", total-overhead) + `"}`
	}
	// The state input may use all of 256 KiB but the room the task token
	// and ids need beside it.
	limit := longrun.MaxInputBytes - longrun.StateOverheadBytes
	tests := []struct {
		name   string
		total  int
		status int
	}{
		{"exactly at the limit", limit, 202},
		{"one byte over", limit + 1, 413},
		{"far over, body cap", 3 * longrun.MaxInputBytes, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t)
			w := hs.do(t, "POST", "/start-execution", hs.acme, body(tt.total))
			if tt.status == 202 {
				if w.Code != 202 {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				return
			}
			p := wantProblem(t, w, 413, "256 KiB")
			if tt.total == limit+1 && !strings.Contains(p.Detail, fmt.Sprint(tt.total)) {
				t.Fatalf("detail %q does not give the size %d", p.Detail, tt.total)
			}
		})
	}
}

func TestStartIdempotency(t *testing.T) {
	t.Parallel()
	const body = `{"input":{"seconds":3,"fail":"x"},"name":"a"}`
	tests := []struct {
		name     string
		key      func(hs *harness) string
		body     string
		status   int
		sameID   bool
		replayed bool
	}{
		{name: "same key, same body", key: func(hs *harness) string { return hs.acme }, body: body, status: 202, sameID: true, replayed: true},
		{name: "same key, same body re-spaced", key: func(hs *harness) string { return hs.acme }, body: `{ "input": { "seconds": 3, "fail": "x" }, "name": "a" }`, status: 202, sameID: true, replayed: true},
		{name: "same key, same body, keys reordered", key: func(hs *harness) string { return hs.acme }, body: `{"name":"a","input":{"fail":"x","seconds":3}}`, status: 202, sameID: true, replayed: true},
		{name: "same key, other body", key: func(hs *harness) string { return hs.acme }, body: `{"input":{"seconds":4,"fail":"x"},"name":"a"}`, status: 409},
		{name: "same key, number written otherwise", key: func(hs *harness) string { return hs.acme }, body: `{"input":{"seconds":3.0,"fail":"x"},"name":"a"}`, status: 409},
		{name: "same key, other tenant", key: func(hs *harness) string { return hs.globex }, body: body, status: 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t)
			first := hs.do(t, "POST", "/start-execution", hs.acme, body, "Idempotency-Key", "order-42")
			if first.Code != 202 {
				t.Fatalf("first start: %d %s", first.Code, first.Body)
			}
			hs.clock.Advance(time.Hour)
			w := hs.do(t, "POST", "/start-execution", tt.key(hs), tt.body, "Idempotency-Key", "order-42")
			if tt.status == 409 {
				wantProblem(t, w, 409, "Idempotency-Key", "different request body")
				return
			}
			if w.Code != tt.status {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if got := w.Header().Get("Idempotent-Replayed") == "true"; got != tt.replayed {
				t.Fatalf("Idempotent-Replayed %v, want %v", got, tt.replayed)
			}
			if same := w.Body.String() == first.Body.String(); same != tt.sameID {
				t.Fatalf("body %s vs first %s: same %v, want %v", w.Body, first.Body, same, tt.sameID)
			}
			if tt.replayed && len(hs.orch.started()) != 2 {
				t.Fatalf("a replay of a RUNNING execution must call StartExecution again; calls: %d", len(hs.orch.started()))
			}
		})
	}
}

func TestStartReplayOfEndedExecution(t *testing.T) {
	t.Parallel()
	hs := setup(t)
	first := hs.do(t, "POST", "/start-execution", hs.acme, `{"input":1}`, "Idempotency-Key", "k")
	var res startResponse
	decode(t, first, &res)
	_, _, _ = hs.store.FinishExecution(context.Background(), res.ExecutionID, longrun.Outcome{Status: longrun.StatusSucceeded, StopDate: t0.Add(time.Minute)})

	w := hs.do(t, "POST", "/start-execution", hs.acme, `{"input":1}`, "Idempotency-Key", "k")
	var again startResponse
	decode(t, w, &again)
	if w.Code != 202 || again.ExecutionID != res.ExecutionID || again.Status != longrun.StatusSucceeded || w.Header().Get("Retry-After") != "" {
		t.Fatalf("replay of an ended execution: %d %s, Retry-After %q", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if n := len(hs.orch.started()); n != 1 {
		t.Fatalf("an ended execution was started again (%d starts)", n)
	}
}

func TestStartFailureCleansUp(t *testing.T) {
	t.Parallel()
	hs := setup(t)
	hs.orch.setStartErr(errors.New("sfn: ThrottlingException at arn:aws:states:secret"))
	w := hs.do(t, "POST", "/start-execution", hs.acme, `{"input":1}`, "Idempotency-Key", "k")
	p := wantProblem(t, w, 503, "retrying is safe")
	if strings.Contains(w.Body.String(), "secret") || p.RequestID == "" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("503 leaks internals or lacks a request id / Retry-After: %s", w.Body)
	}
	if n := hs.store.count(); n != 0 {
		t.Fatalf("the failed start left %d records", n)
	}
	if !strings.Contains(hs.logs.String(), "ThrottlingException") || !strings.Contains(hs.logs.String(), p.RequestID) {
		t.Fatalf("the log lacks the cause or request id: %s", hs.logs)
	}

	hs.orch.setStartErr(nil)
	w = hs.do(t, "POST", "/start-execution", hs.acme, `{"input":1}`, "Idempotency-Key", "k")
	if w.Code != 202 || w.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after a failed start: %d %s, replayed %q", w.Code, w.Body, w.Header().Get("Idempotent-Replayed"))
	}
}

// A redeliver whose loop could not be started leaves the delivery as it was,
// so the client's retry is not refused as "still being delivered".
func TestRedeliverStartFailureRestores(t *testing.T) {
	t.Parallel()
	hs := setup(t)
	const id = "0193a6f0-0000-7000-8000-000000000002"
	e := running(id, "acme")
	e.Status, e.CallbackURL = longrun.StatusFailed, "https://example.com/h"
	e.Webhook = &longrun.Delivery{EventID: "msg_" + id, Type: longrun.EventFailed, State: longrun.DeliveryFailed, RoundAttempts: 8}
	hs.store.put(e)
	hs.orch.mu.Lock()
	hs.orch.redeliverErr = errors.New("sfn: ThrottlingException")
	hs.orch.mu.Unlock()
	wantProblem(t, hs.do(t, "POST", "/executions/"+id+"/redeliver", hs.acme, ""), 503)
	if stored, _ := hs.store.execution(id); stored.Webhook.State != longrun.DeliveryFailed || stored.Webhook.Round != 0 || stored.Webhook.RoundAttempts != 8 {
		t.Fatalf("delivery after a failed redeliver %+v, want it as it was", stored.Webhook)
	}
	hs.orch.mu.Lock()
	hs.orch.redeliverErr = nil
	hs.orch.mu.Unlock()
	if w := hs.do(t, "POST", "/executions/"+id+"/redeliver", hs.acme, ""); w.Code != 202 {
		t.Fatalf("retry: %d %s, want 202", w.Code, w.Body)
	}
}

// A round whose loop already ran (a concurrent redeliver took it) gives way
// to the next one.
func TestRedeliverSkipsAnEndedRound(t *testing.T) {
	t.Parallel()
	hs := setup(t)
	const id = "0193a6f0-0000-7000-8000-000000000003"
	e := running(id, "acme")
	e.Status, e.CallbackURL = longrun.StatusFailed, "https://example.com/h"
	e.Webhook = &longrun.Delivery{EventID: "msg_" + id, Type: longrun.EventFailed, State: longrun.DeliveryDelivered}
	hs.store.put(e)
	hs.orch.mu.Lock()
	hs.orch.endedRounds = map[int]bool{1: true}
	hs.orch.mu.Unlock()
	if w := hs.do(t, "POST", "/executions/"+id+"/redeliver", hs.acme, ""); w.Code != 202 {
		t.Fatalf("redeliver: %d %s", w.Code, w.Body)
	}
	stored, _ := hs.store.execution(id)
	if fmt.Sprint(hs.orch.redelivers) != "["+longrun.DeliverName(id, 2)+"]" || stored.Webhook.Round != 2 {
		t.Fatalf("Redeliver calls %v, round %d: want round 2 started", hs.orch.redelivers, stored.Webhook.Round)
	}
}

// A concurrent replay of the same Idempotency-Key may start the execution
// first: the first request's own start then finds it there, which is success,
// and must not delete the record of a running execution.
func TestStartFindsItsExecutionAlreadyStarted(t *testing.T) {
	t.Parallel()
	hs := setup(t)
	hs.orch.setStartErr(longrun.Errorf(longrun.EDUPLICATE, "ExecutionAlreadyExists"))
	w := hs.do(t, "POST", "/start-execution", hs.acme, `{"input":1}`, "Idempotency-Key", "k")
	if w.Code != 202 {
		t.Fatalf("start that found its execution started: %d %s, want 202", w.Code, w.Body)
	}
	if n := hs.store.count(); n != 1 {
		t.Fatalf("%d records, want the started execution's", n)
	}
}

func TestStartReplayHealsCrashBetweenWrites(t *testing.T) {
	t.Parallel()
	hs := setup(t)
	// A start that crashed after CreateExecution: the record exists, the
	// orchestration does not.
	req := startRequest{Input: json.RawMessage(`{"seconds":3}`)}
	e := running(longrun.NewExecutionID(), "acme")
	e.IdempotencyKey, e.RequestHash = "k", requestHash(req)
	hs.store.put(e)

	w := hs.do(t, "POST", "/start-execution", hs.acme, `{"input": {"seconds": 3}}`, "Idempotency-Key", "k")
	if w.Code != 202 || w.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
	starts := hs.orch.started()
	if len(starts) != 1 || starts[0].ExecutionID != e.ID || starts[0].Limits != limits {
		t.Fatalf("the replay did not start the orphaned execution: %+v", starts)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	ended := running("0193a6f0-0000-7000-8000-000000000002", "acme")
	ended.Status, ended.Output, ended.StopDate = longrun.StatusSucceeded, json.RawMessage(`{"message":"done"}`), t0.Add(time.Minute)
	ended.CallbackURL = "https://example.com/hook"
	ended.Webhook = &longrun.Delivery{
		EventID: "evt_1", Type: longrun.EventSucceeded, State: longrun.DeliveryPending,
		Attempts:    []longrun.Attempt{{At: t0.Add(time.Minute), StatusCode: 503, Latency: 1500 * time.Millisecond, Error: "upstream down"}},
		NextAttempt: t0.Add(time.Minute + 5*time.Second),
	}
	live := running("0193a6f0-0000-7000-8000-000000000001", "acme")
	live.Progress = &longrun.Progress{Percent: 40, Message: "boiling", UpdatedAt: t0}
	foreign := running("0193a6f0-0000-7000-8000-000000000003", "globex")

	tests := []struct {
		name, method, path, body string
		status                   int
		wantID                   string
		retryAfter               bool
		details                  []string
	}{
		{name: "get running", method: "GET", path: "/executions/" + live.ID, status: 200, wantID: live.ID, retryAfter: true},
		{name: "get ended", method: "GET", path: "/executions/" + ended.ID, status: 200, wantID: ended.ID},
		{name: "post by id", method: "POST", path: "/describe-execution", body: `{"executionId":"` + ended.ID + `"}`, status: 200, wantID: ended.ID},
		{name: "post by arn", method: "POST", path: "/describe-execution", body: `{"executionArn":"` + arnPrefix + live.ID + `"}`, status: 200, wantID: live.ID, retryAfter: true},
		{name: "post by both", method: "POST", path: "/describe-execution", body: `{"executionArn":"` + arnPrefix + live.ID + `","executionId":"` + live.ID + `"}`, status: 200, wantID: live.ID, retryAfter: true},
		{name: "post by mismatched both", method: "POST", path: "/describe-execution", body: `{"executionArn":"` + arnPrefix + live.ID + `","executionId":"` + ended.ID + `"}`, status: 400, details: []string{"different executions"}},
		{name: "post by foreign arn form", method: "POST", path: "/describe-execution", body: `{"executionArn":"arn:aws:states:us-east-1:999:execution:other:` + live.ID + `"}`, status: 404},
		{name: "post naming nothing", method: "POST", path: "/describe-execution", body: `{}`, status: 400, details: []string{"executionArn or executionId"}},
		{name: "post unknown field", method: "POST", path: "/describe-execution", body: `{"id":"x"}`, status: 400, details: []string{`unknown field "id"`}},
		{name: "unknown", method: "GET", path: "/executions/0193a6f0-0000-7000-8000-00000000dead", status: 404, details: []string{"does not exist"}},
		{name: "foreign tenant", method: "GET", path: "/executions/" + foreign.ID, status: 404, details: []string{"does not exist"}},
		{name: "foreign tenant by post", method: "POST", path: "/describe-execution", body: `{"executionId":"` + foreign.ID + `"}`, status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t)
			for _, e := range []longrun.Execution{live, ended, foreign} {
				hs.store.put(e)
			}
			w := hs.do(t, tt.method, tt.path, hs.acme, tt.body)
			if tt.status != 200 {
				wantProblem(t, w, tt.status, tt.details...)
				return
			}
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if got := w.Header().Get("Retry-After") != ""; got != tt.retryAfter {
				t.Fatalf("Retry-After present %v, want %v", got, tt.retryAfter)
			}
			var got map[string]any
			decode(t, w, &got)
			if got["executionId"] != tt.wantID || got["executionArn"] != arnPrefix+tt.wantID {
				t.Fatalf("described %v", got)
			}
		})
	}

	t.Run("fields", func(t *testing.T) {
		t.Parallel()
		hs := setup(t)
		hs.store.put(ended)
		hs.store.put(live)
		w := hs.do(t, "GET", "/executions/"+ended.ID, hs.acme, "")
		want := `{"executionArn":"` + arnPrefix + ended.ID + `","executionId":"` + ended.ID + `","status":"SUCCEEDED","input":{"seconds":3},` +
			`"output":{"message":"done"},"callbackUrl":"https://example.com/hook","startDate":"2026-11-25T08:30:00Z","stopDate":"2026-11-25T08:31:00Z",` +
			`"webhook":{"id":"evt_1","type":"execution.succeeded","state":"pending","attempts":[{"at":"2026-11-25T08:31:00Z","statusCode":503,"latencyMs":1500,"error":"upstream down"}],"nextAttempt":"2026-11-25T08:31:05Z"}}`
		if got := strings.TrimSpace(w.Body.String()); got != want {
			t.Fatalf("describe body\n got %s\nwant %s", got, want)
		}
		w = hs.do(t, "GET", "/executions/"+live.ID, hs.acme, "")
		if !strings.Contains(w.Body.String(), `"progress":{"percent":40,"message":"boiling","updatedAt":"2026-11-25T08:30:00Z"}`) || strings.Contains(w.Body.String(), "stopDate") {
			t.Fatalf("running describe body %s", w.Body)
		}
	})

	t.Run("foreign is exactly like unknown", func(t *testing.T) {
		t.Parallel()
		hs := setup(t)
		hs.store.put(foreign)
		unknown := "0193a6f0-0000-7000-8000-000000000004"
		wf := hs.do(t, "GET", "/executions/"+foreign.ID, hs.acme, "")
		wu := hs.do(t, "GET", "/executions/"+unknown, hs.acme, "")
		norm := func(w *httptest.ResponseRecorder) string {
			return strings.NewReplacer(foreign.ID, "ID", unknown, "ID").Replace(w.Body.String())
		}
		if wf.Code != wu.Code || norm(wf) != norm(wu) {
			t.Fatalf("foreign %d %s differs from unknown %d %s", wf.Code, wf.Body, wu.Code, wu.Body)
		}
	})
}

func TestList(t *testing.T) {
	t.Parallel()
	seed := func(hs *harness) {
		for i := range 5 {
			e := running(fmt.Sprintf("0193a6f0-0000-7000-8000-00000000000%d", i), "acme")
			if i%2 == 0 {
				e.Status, e.StopDate = longrun.StatusSucceeded, t0.Add(time.Minute)
			}
			e.Job = "ramen"
			if i == 1 || i == 4 {
				e.Job = "export"
			}
			hs.store.put(e)
		}
		hs.store.put(running("0193a6f0-0000-7000-8000-000000000009", "globex"))
	}
	tests := []struct {
		name    string
		query   string
		status  int
		wantIDs []string // last digit of each id, in order
		more    bool
		details []string
	}{
		{name: "default", query: "", status: 200, wantIDs: []string{"4", "3", "2", "1", "0"}},
		{name: "limit", query: "?limit=2", status: 200, wantIDs: []string{"4", "3"}, more: true},
		{name: "status", query: "?status=RUNNING", status: 200, wantIDs: []string{"3", "1"}},
		{name: "next page", query: "?limit=2&nextToken=page:2", status: 200, wantIDs: []string{"2", "1"}, more: true},
		{name: "job", query: "?job=export", status: 200, wantIDs: []string{"4", "1"}},
		{name: "job and status", query: "?job=export&status=RUNNING", status: 200, wantIDs: []string{"1"}},
		{name: "job never run", query: "?job=transcode", status: 200},
		{name: "bad job", query: "?job=no%20such%20thing", status: 400, details: []string{"not a job kind name"}},
		{name: "limit zero", query: "?limit=0", status: 400, details: []string{"1 to 100"}},
		{name: "limit over max", query: "?limit=101", status: 400, details: []string{"1 to 100"}},
		{name: "limit not a number", query: "?limit=ten", status: 400, details: []string{"whole number"}},
		{name: "bad status", query: "?status=DONE", status: 400, details: []string{"RUNNING, SUCCEEDED"}},
		{name: "bad token", query: "?nextToken=forged", status: 400, details: []string{"nextToken"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t)
			seed(hs)
			w := hs.do(t, "GET", "/executions"+tt.query, hs.acme, "")
			if tt.status != 200 {
				wantProblem(t, w, tt.status, tt.details...)
				return
			}
			var res listResponse
			decode(t, w, &res)
			var got []string
			for _, e := range res.Executions {
				got = append(got, e.ExecutionID[len(e.ExecutionID)-1:])
				if e.Job == "" {
					t.Errorf("listed execution %s has no job kind", e.ExecutionID)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantIDs) || (res.NextToken != "") != tt.more {
				t.Fatalf("page %v next %q; want %v more %v", got, res.NextToken, tt.wantIDs, tt.more)
			}
		})
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	const id = "0193a6f0-0000-7000-8000-000000000001"
	tests := []struct {
		name, method, path, body string
		owner                    string
		status                   longrun.Status // stored status before the stop
		stopErr                  error
		want                     int
		wantError, wantCause     string
		details                  []string
	}{
		{name: "delete", method: "DELETE", path: "/executions/" + id, owner: "acme", status: longrun.StatusRunning, want: 200, wantError: longrun.ErrNameStopped},
		{name: "post by id", method: "POST", path: "/stop-execution", body: `{"executionId":"` + id + `"}`, owner: "acme", status: longrun.StatusRunning, want: 200, wantError: longrun.ErrNameStopped},
		{name: "post with error and cause", method: "POST", path: "/stop-execution", body: `{"executionArn":"` + arnPrefix + id + `","error":"User.Cancelled","cause":"changed my mind"}`, owner: "acme", status: longrun.StatusRunning, want: 200, wantError: "User.Cancelled", wantCause: "changed my mind"},
		{name: "already ended", method: "DELETE", path: "/executions/" + id, owner: "acme", status: longrun.StatusSucceeded, want: 409, details: []string{"already ended with status SUCCEEDED"}},
		{name: "ended in the orchestrator first", method: "DELETE", path: "/executions/" + id, owner: "acme", status: longrun.StatusRunning, stopErr: longrun.Errorf(longrun.ENOTRUNNING, "gone"), want: 409, details: []string{"already ended"}},
		{name: "orchestrator down", method: "DELETE", path: "/executions/" + id, owner: "acme", status: longrun.StatusRunning, stopErr: errors.New("sfn: 500"), want: 503},
		{name: "foreign", method: "DELETE", path: "/executions/" + id, owner: "globex", status: longrun.StatusRunning, want: 404},
		{name: "error too long", method: "POST", path: "/stop-execution", body: `{"executionId":"` + id + `","error":"` + strings.Repeat("e", 257) + `"}`, owner: "acme", status: longrun.StatusRunning, want: 400, details: []string{"256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t)
			e := running(id, tt.owner)
			e.Status = tt.status
			hs.store.put(e)
			hs.orch.stopErr = tt.stopErr
			hs.clock.Advance(time.Minute)
			w := hs.do(t, tt.method, tt.path, hs.acme, tt.body)
			if tt.want != 200 {
				p := wantProblem(t, w, tt.want, tt.details...)
				if tt.want == 409 && p.Type != problemTypePrefix+longrun.ENOTRUNNING {
					t.Fatalf("type %q, want not_running", p.Type)
				}
				if stored, _ := hs.store.execution(id); stored.Status != tt.status {
					t.Fatalf("a refused stop changed the status to %s", stored.Status)
				}
				return
			}
			var got map[string]any
			decode(t, w, &got)
			if w.Code != 200 || got["status"] != "ABORTED" || got["error"] != tt.wantError || (tt.wantCause != "" && got["cause"] != tt.wantCause) || got["stopDate"] != "2026-11-25T08:31:00Z" {
				t.Fatalf("stop answered %d %s", w.Code, w.Body)
			}
			if len(hs.orch.stops) != 1 || hs.orch.stops[0] != (stopCall{arnPrefix + id, tt.wantError, tt.wantCause}) {
				t.Fatalf("StopExecution calls %+v", hs.orch.stops)
			}
			d := hs.do(t, "GET", "/executions/"+id, hs.acme, "")
			if !strings.Contains(d.Body.String(), `"status":"ABORTED"`) {
				t.Fatalf("describe after stop: %s", d.Body)
			}
		})
	}
}

// A stop that reaches Step Functions while Finalize has already recorded the
// job's outcome changes nothing a client sees: describe and the webhook keep
// SUCCEEDED, so the stop answers 409, not 200 with a SUCCEEDED body.
func TestStopRacingFinalize(t *testing.T) {
	t.Parallel()
	const id = "0193a6f0-0000-7000-8000-000000000001"
	hs := setup(t)
	hs.store.put(running(id, "acme"))
	hs.orch.onStop = func() {
		if _, _, err := hs.store.FinishExecution(context.Background(), id, longrun.Outcome{Status: longrun.StatusSucceeded, Output: json.RawMessage(`{}`), StopDate: t0}); err != nil {
			t.Error(err)
		}
	}
	w := hs.do(t, "DELETE", "/executions/"+id, hs.acme, "")
	p := wantProblem(t, w, 409, "ended SUCCEEDED before the stop")
	if p.Type != problemTypePrefix+longrun.ENOTRUNNING {
		t.Fatalf("type %q, want not_running", p.Type)
	}
	if stored, _ := hs.store.execution(id); stored.Status != longrun.StatusSucceeded {
		t.Fatalf("the record is %s, want the SUCCEEDED that Finalize recorded", stored.Status)
	}
}

func TestRedeliver(t *testing.T) {
	t.Parallel()
	const id = "0193a6f0-0000-7000-8000-000000000001"
	failed := &longrun.Delivery{EventID: "evt_7", Type: longrun.EventFailed, State: longrun.DeliveryFailed,
		Attempts: []longrun.Attempt{{At: t0, StatusCode: 410}}, RoundAttempts: 1}
	// The clock reads t0 + 1h when the request arrives.
	retrying := &longrun.Delivery{EventID: "evt_7", Type: longrun.EventFailed, State: longrun.DeliveryPending,
		Attempts: []longrun.Attempt{{At: t0, StatusCode: 503}}, NextAttempt: t0.Add(time.Hour + 5*time.Minute)}
	stalled := &longrun.Delivery{EventID: "evt_7", Type: longrun.EventFailed, State: longrun.DeliveryPending,
		Attempts: []longrun.Attempt{{At: t0, StatusCode: 503}}, NextAttempt: t0.Add(5 * time.Second)}
	tests := []struct {
		name     string
		owner    string
		status   longrun.Status
		callback string
		webhook  *longrun.Delivery
		want     int
		details  []string
	}{
		{name: "failed delivery", owner: "acme", status: longrun.StatusFailed, callback: "https://example.com/h", webhook: failed, want: 202},
		{name: "still running", owner: "acme", status: longrun.StatusRunning, callback: "https://example.com/h", want: 409, details: []string{"still RUNNING"}},
		{name: "no callback", owner: "acme", status: longrun.StatusSucceeded, want: 409, details: []string{"no callbackUrl"}},
		{name: "not yet notified", owner: "acme", status: longrun.StatusAborted, callback: "https://example.com/h", want: 409, details: []string{"not been sent yet"}},
		{name: "foreign", owner: "globex", status: longrun.StatusFailed, callback: "https://example.com/h", webhook: failed, want: 404},
		{name: "retries under way", owner: "acme", status: longrun.StatusFailed, callback: "https://example.com/h", webhook: retrying, want: 409, details: []string{"still being delivered", "next attempt"}},
		{name: "stalled retries", owner: "acme", status: longrun.StatusFailed, callback: "https://example.com/h", webhook: stalled, want: 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t)
			e := running(id, tt.owner)
			e.Status, e.CallbackURL, e.Webhook = tt.status, tt.callback, tt.webhook
			hs.store.put(e)
			hs.clock.Advance(time.Hour)
			w := hs.do(t, "POST", "/executions/"+id+"/redeliver", hs.acme, "")
			if tt.want != 202 {
				wantProblem(t, w, tt.want, tt.details...)
				if len(hs.orch.redelivers) != 0 {
					t.Fatal("a refused redeliver reached the orchestrator")
				}
				return
			}
			if w.Code != 202 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			stored, _ := hs.store.execution(id)
			d := stored.Webhook
			if d.EventID != "evt_7" || d.State != longrun.DeliveryPending || !d.NextAttempt.Equal(t0.Add(time.Hour)) || len(d.Attempts) != 1 || d.RoundAttempts != 0 {
				t.Fatalf("delivery after redeliver %+v", d)
			}
			if fmt.Sprint(hs.orch.redelivers) != "["+longrun.DeliverName(id, tt.webhook.Round+1)+"]" || d.Round != tt.webhook.Round+1 {
				t.Fatalf("Redeliver calls %v, round %d: want the next round started", hs.orch.redelivers, d.Round)
			}
		})
	}
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	hs := setup(t, func(c *Config) { c.RatePerTenant, c.BurstPerTenant = 0.5, 2 })
	get := func(key string) *httptest.ResponseRecorder { return hs.do(t, "GET", "/executions", key, "") }
	for i := range 2 {
		if w := get(hs.acme); w.Code != 200 {
			t.Fatalf("request %d within the burst: %d", i, w.Code)
		}
	}
	w := get(hs.acme)
	wantProblem(t, w, 429, "0.5 requests per second")
	if w.Header().Get("Retry-After") != "2" {
		t.Fatalf("Retry-After %q, want 2", w.Header().Get("Retry-After"))
	}
	if w := get(hs.globex); w.Code != 200 {
		t.Fatalf("another tenant was throttled: %d", w.Code)
	}
	hs.clock.Advance(2 * time.Second)
	if w := get(hs.acme); w.Code != 200 {
		t.Fatalf("after the refill: %d", w.Code)
	}
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		break_ func(*harness)
		path   string
		status int // a store that fails is a dependency down: retryable
	}{
		{name: "store error", break_: func(hs *harness) { hs.store.getErr = errors.New("dial tcp 10.0.3.7:5432: secret-host refused") }, path: "/executions/x", status: 503},
		{name: "panic", break_: func(hs *harness) { hs.store.panicOnList = true }, path: "/executions", status: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t)
			tt.break_(hs)
			w := hs.do(t, "GET", tt.path, hs.acme, "")
			p := wantProblem(t, w, tt.status)
			if strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "exploded") || p.RequestID == "" {
				t.Fatalf("500 body leaks or lacks a request id: %s", w.Body)
			}
			if p.RequestID != w.Header().Get("X-Request-Id") || !strings.Contains(hs.logs.String(), `"request_id":"`+p.RequestID+`"`) {
				t.Fatalf("request id %q not in header/log: %s", p.RequestID, hs.logs)
			}
		})
	}
}

func TestLogsCarryExecutionID(t *testing.T) {
	t.Parallel()
	hs := setup(t)
	id := hs.start(t, `{"input":1}`)
	var found bool
	for line := range strings.SplitSeq(hs.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" && rec["execution_id"] == id && rec["tenant"] == "acme" && rec["status"] == float64(202) {
			found = true
		}
	}
	if !found || strings.Contains(hs.logs.String(), hs.acme) {
		t.Fatalf("no request log line with execution_id %s (or the key leaked): %s", id, hs.logs)
	}
}

func TestNoRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/nope", 404, ""},
		{"PUT", "/executions/x", 405, "DELETE, GET, HEAD"},
		{"GET", "/start-execution", 405, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			t.Parallel()
			hs := setup(t)
			w := hs.do(t, tt.method, tt.path, hs.acme, "")
			if w.Code != tt.status || w.Header().Get("Content-Type") != "application/problem+json" || w.Header().Get("Allow") != tt.allow {
				t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
			}
		})
	}
}

func TestKeyStoreOutageIs503(t *testing.T) {
	t.Parallel()
	hs := setup(t, func(c *Config) { c.Tenants = failingTenants{} })
	w := hs.do(t, "GET", "/executions", hs.acme, "")
	wantProblem(t, w, 503, "retrying is safe")
	if strings.Contains(w.Body.String(), "dynamodb") {
		t.Fatalf("503 leaks the cause: %s", w.Body)
	}
}

type failingTenants struct{ *tenantStore }

func (failingTenants) TenantForKey(context.Context, string) (string, error) {
	return "", errors.New("dynamodb: ProvisionedThroughputExceededException")
}

// Describe of a running execution names its current state when the server
// can tell (Config.CurrentState); an ended one, and a server that cannot,
// leave it out.
func TestDescribeNamesTheCurrentState(t *testing.T) {
	t.Parallel()
	const live, ended = "0193a6f0-0000-7000-8000-000000000001", "0193a6f0-0000-7000-8000-000000000002"
	asked := 0
	hs := setup(t, func(c *Config) {
		c.CurrentState = func(_ context.Context, e *longrun.Execution) string { asked++; return "Work:" + e.ID }
	})
	hs.store.put(running(live, "acme"))
	done := running(ended, "acme")
	done.Status, done.StopDate = longrun.StatusSucceeded, t0
	hs.store.put(done)
	var got struct{ State string }
	decode(t, hs.do(t, "GET", "/executions/"+live, hs.acme, ""), &got)
	if got.State != "Work:"+live {
		t.Errorf("GET running: state %q, want the current state", got.State)
	}
	decode(t, hs.do(t, "POST", "/describe-execution", hs.acme, `{"executionId":"`+live+`"}`), &got)
	if got.State != "Work:"+live {
		t.Errorf("POST running: state %q, want the current state", got.State)
	}
	if w := hs.do(t, "GET", "/executions/"+ended, hs.acme, ""); strings.Contains(w.Body.String(), `"state"`) || asked != 2 {
		t.Errorf("an ended execution: %s (CurrentState asked %d times, want 2)", w.Body, asked)
	}
	plain := setup(t)
	plain.store.put(running(live, "acme"))
	if w := plain.do(t, "GET", "/executions/"+live, plain.acme, ""); strings.Contains(w.Body.String(), `"state"`) {
		t.Errorf("without CurrentState: %s, want no state", w.Body)
	}
}
