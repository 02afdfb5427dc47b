package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/delivery"
	"github.com/longrun/longrun/internal/fakeclock"
	"github.com/longrun/longrun/webhook"
)

// The execution every fixture in testdata/ is about.
const (
	execID  = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	execARN = "arn:aws:states:eu-west-1:123456789012:execution:longrun:" + execID
	tenant  = "tenant-1"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

type request struct {
	header http.Header
	body   []byte
	at     time.Time // the fixture clock when it arrived
}

type fixture struct {
	store  *fakeStore
	clock  *fakeclock.Clock
	secret string
	srv    *httptest.Server
	n      *Notifier

	mu         sync.Mutex
	answers    []int // status codes the receiver answers, in order; then 200
	requests   []request
	redelivers []string
	redeliver  error        // returned by Redeliver
	ended      map[int]bool // rounds whose loop has ended: Redeliver gives ENOTRUNNING
}

// setup starts a receiver on 127.0.0.1, a store holding one RUNNING execution
// whose callback is that receiver, and a Notifier with a fixed clock, no
// jitter and loopback allowed.
func setup(t *testing.T, configure ...func(*Config, *longrun.Execution)) *fixture {
	t.Helper()
	f := &fixture{store: newFakeStore(), clock: fakeclock.At(t0), secret: webhook.NewSecret()}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, request{header: r.Header.Clone(), body: body, at: f.clock.Now()})
		code := http.StatusOK
		if len(f.answers) > 0 {
			code, f.answers = f.answers[0], f.answers[1:]
		}
		f.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(f.srv.Close)
	if err := f.store.PutTenant(t.Context(), &longrun.Tenant{ID: tenant, Secrets: []longrun.WebhookSecret{{Value: f.secret, CreatedAt: t0.Add(-time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	e := longrun.Execution{
		ID: execID, ARN: execARN, Tenant: tenant, Job: "ramen", Status: longrun.StatusRunning,
		Input: json.RawMessage(`{"timer":3}`), CallbackURL: f.srv.URL + "/hook", StartDate: t0.Add(-3 * time.Second),
	}
	cfg := Config{
		Store:   f.store,
		Tenants: f.store,
		Redeliver: func(_ context.Context, id string, round int) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.redelivers = append(f.redelivers, longrun.DeliverName(id, round))
			if f.ended[round] {
				return longrun.Errorf(longrun.ENOTRUNNING, "round %d has ended", round)
			}
			return f.redeliver
		},
		Sender:      delivery.NewSender(delivery.Config{Policy: delivery.Policy{AllowLoopback: true}, Clock: f.clock, Timeout: 5 * time.Second}),
		Schedule:    delivery.Schedule{Rand: func() float64 { return 0 }},
		Clock:       f.clock,
		DescribeURL: func(id string) string { return "https://api.example.com/executions/" + id },
	}
	for _, c := range configure {
		c(&cfg, &e)
	}
	f.store.put(e)
	f.n = New(cfg)
	return f
}

func (f *fixture) answer(codes ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers = append(f.answers, codes...)
}

func (f *fixture) received() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func (f *fixture) redelivered() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.redelivers...)
}

func fixtureFile(t *testing.T, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handle runs a testdata payload through Handle.
func (f *fixture) handle(t *testing.T, name string) (json.RawMessage, error) {
	t.Helper()
	return f.n.Handle(t.Context(), fixtureFile(t, name))
}

func (f *fixture) mustHandle(t *testing.T, name string) json.RawMessage {
	t.Helper()
	out, err := f.handle(t, name)
	if err != nil {
		t.Fatalf("Handle(%s): %v", name, err)
	}
	return out
}

func (f *fixture) deliver(t *testing.T) longrun.DeliverResult {
	t.Helper()
	out := f.mustHandle(t, "deliver.json")
	// The deliver state machine's ResultSelector reads both fields: a missing
	// one would fail it with States.Runtime.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(out, &fields); err != nil || fields["done"] == nil || fields["retryAt"] == nil {
		t.Fatalf("deliver answered %s, want both done and retryAt", out)
	}
	var r longrun.DeliverResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// verified checks a received webhook's signature with the tenant's secret
// and returns its payload.
func (f *fixture) verified(t *testing.T, r request) webhook.Event {
	t.Helper()
	if err := webhook.Verify([]string{f.secret}, r.header, r.body, r.at); err != nil {
		t.Fatalf("webhook does not verify: %v", err)
	}
	if got := r.header.Get(webhook.HeaderID); got != EventID(execID) {
		t.Fatalf("webhook-id %q, want %q", got, EventID(execID))
	}
	var ev webhook.Event
	if err := json.Unmarshal(r.body, &ev); err != nil {
		t.Fatalf("webhook body %s: %v", r.body, err)
	}
	return ev
}

func TestFinalizeDelivers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		fixture string
		status  longrun.Status
		event   longrun.EventType
		output  string
		errName string
		cause   string
	}{
		{"finalize-succeeded.json", longrun.StatusSucceeded, longrun.EventSucceeded, `{"message":"Your ramen is ready!"}`, "", ""},
		{"finalize-failed.json", longrun.StatusFailed, longrun.EventFailed, "", "Job.Failed", "noodles burnt"},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			if out := f.mustHandle(t, tc.fixture); string(out) != "{}" {
				t.Fatalf("finalize answered %s, want {}", out)
			}
			e := f.store.get(execID)
			if e.Status != tc.status || string(e.Output) != tc.output || e.Error != tc.errName || e.Cause != tc.cause || !e.StopDate.Equal(t0) {
				t.Fatalf("record %+v, want %s", e, tc.status)
			}
			reqs := f.received()
			if len(reqs) != 1 {
				t.Fatalf("receiver got %d requests, want 1", len(reqs))
			}
			ev := f.verified(t, reqs[0])
			want := webhook.Event{Type: tc.event, Timestamp: t0, Data: webhook.Data{
				ExecutionARN: execARN, ExecutionID: execID, Job: "ramen", Status: tc.status, Error: tc.errName, Cause: tc.cause,
				StartDate: t0.Add(-3 * time.Second), StopDate: t0,
			}}
			if tc.output != "" {
				want.Data.Output = json.RawMessage(tc.output)
			}
			wantJSON, _ := json.Marshal(want)
			if string(reqs[0].body) != string(wantJSON) {
				t.Fatalf("webhook body\n%s\nwant\n%s", reqs[0].body, wantJSON)
			}
			if ev.Type != tc.event || ev.Data.Status != tc.status || ev.Data.Job != "ramen" {
				t.Fatalf("webhook %+v, want %s", ev, tc.event)
			}
			if e.Webhook == nil || e.Webhook.State != longrun.DeliveryDelivered || len(e.Webhook.Attempts) != 1 || e.Webhook.Type != tc.event {
				t.Fatalf("delivery %+v, want delivered after 1 attempt", e.Webhook)
			}
			if r := f.redelivered(); len(r) != 0 {
				t.Fatalf("Redeliver called %v, want never: the first attempt delivered", r)
			}
		})
	}
}

func TestRetriesUntilDelivered(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.answer(500, 503, 204)
	f.mustHandle(t, "finalize-succeeded.json")

	e := f.store.get(execID)
	if e.Webhook.State != longrun.DeliveryPending || !e.Webhook.NextAttempt.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("after a 500: %s, want pending until t0+5s", delivery.Describe(*e.Webhook))
	}
	if r := f.redelivered(); len(r) != 1 || r[0] != longrun.DeliverName(execID, 0) {
		t.Fatalf("Redeliver calls %v, want round 0 of %s", r, execID)
	}

	// The deliver state machine calls early (a retried invocation): nothing is sent.
	f.clock.Set(t0.Add(2 * time.Second))
	if r := f.deliver(t); r.Done || r.RetryAt != "2026-11-25T09:00:05Z" {
		t.Fatalf("early deliver = %+v, want not done, retry at 09:00:05Z", r)
	}
	if n := len(f.received()); n != 1 {
		t.Fatalf("early deliver sent a webhook (%d requests)", n)
	}

	f.clock.Set(t0.Add(5 * time.Second))
	if r := f.deliver(t); r.Done || r.RetryAt != "2026-11-25T09:05:05Z" {
		t.Fatalf("deliver after a 503 = %+v, want retry at 09:05:05Z", r)
	}
	f.clock.Set(t0.Add(5*time.Minute + 5*time.Second))
	if r := f.deliver(t); !r.Done {
		t.Fatalf("deliver after a 204 = %+v, want done", r)
	}

	e = f.store.get(execID)
	codes := []int{}
	for _, a := range e.Webhook.Attempts {
		codes = append(codes, a.StatusCode)
	}
	if e.Webhook.State != longrun.DeliveryDelivered || len(codes) != 3 || codes[0] != 500 || codes[1] != 503 || codes[2] != 204 {
		t.Fatalf("delivery %s with codes %v, want delivered after 500, 503, 204", delivery.Describe(*e.Webhook), codes)
	}
	reqs := f.received()
	for i, r := range reqs {
		f.verified(t, r) // same webhook-id every time, each signed at its own time
		if string(r.body) != string(reqs[0].body) {
			t.Fatalf("attempt %d body differs from the first: the event must not change", i+1)
		}
	}
	if reqs[1].header.Get(webhook.HeaderTimestamp) == reqs[0].header.Get(webhook.HeaderTimestamp) {
		t.Fatal("webhook-timestamp must be the time of each attempt")
	}
	if r := f.redelivered(); len(r) != 1 {
		t.Fatalf("Redeliver calls %v, want exactly the one from finalize", r)
	}
}

func TestGoneFails(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.answer(http.StatusGone)
	f.mustHandle(t, "finalize-succeeded.json")
	e := f.store.get(execID)
	if e.Webhook.State != longrun.DeliveryFailed || !e.Webhook.NextAttempt.IsZero() || e.Webhook.Attempts[0].StatusCode != 410 {
		t.Fatalf("delivery %+v, want failed after the 410", e.Webhook)
	}
	if r := f.redelivered(); len(r) != 0 {
		t.Fatalf("Redeliver calls %v, want none after 410", r)
	}
}

func TestDuplicateFinalize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		answers    []int
		state      longrun.DeliveryState
		redelivers int
	}{
		{"after delivery", nil, longrun.DeliveryDelivered, 0},
		// A repeat may follow a Redeliver that failed, so each one starts the
		// round again (1 + 2 calls, all round 0: one loop); it still sends
		// nothing itself.
		{"while retrying", []int{500}, longrun.DeliveryPending, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.answer(tc.answers...)
			f.mustHandle(t, "finalize-succeeded.json")
			f.clock.Set(t0.Add(time.Second))
			other := json.RawMessage(`{"action":"finalize","executionId":"` + execID + `","status":"FAILED","failure":{"Error":"Late","Cause":"a second outcome"}}`)
			for _, payload := range []json.RawMessage{fixtureFile(t, "finalize-succeeded.json"), other} {
				if out, err := f.n.Handle(t.Context(), payload); err != nil || string(out) != "{}" {
					t.Fatalf("repeated finalize = %s, %v; want {}", out, err)
				}
			}
			e := f.store.get(execID)
			if e.Status != longrun.StatusSucceeded || !e.StopDate.Equal(t0) || e.Error != "" {
				t.Fatalf("record %+v, want the first outcome only", e)
			}
			if n := len(f.received()); n != 1 {
				t.Fatalf("receiver got %d requests, want 1", n)
			}
			if e.Webhook.State != tc.state || len(e.Webhook.Attempts) != 1 || e.Webhook.EventID != EventID(execID) {
				t.Fatalf("delivery %+v, want %s with one attempt", e.Webhook, tc.state)
			}
			if r := f.redelivered(); len(r) != tc.redelivers {
				t.Fatalf("Redeliver calls %v, want %d", r, tc.redelivers)
			}
			// Every call names the same round: one loop, however often started.
			for _, name := range f.redelivered() {
				if name != longrun.DeliverName(execID, 0) {
					t.Fatalf("Redeliver calls %v, want round 0 each time", f.redelivered())
				}
			}
		})
	}
}

func TestStatusChange(t *testing.T) {
	t.Parallel()
	stop := time.UnixMilli(1795597207123).UTC()
	cases := []struct {
		fixture string
		status  longrun.Status
		event   longrun.EventType
		errName string
		cause   string
	}{
		{"eventbridge-aborted.json", longrun.StatusAborted, longrun.EventAborted, "Execution.Stopped", "stopped by the client"},
		{"eventbridge-timed-out.json", longrun.StatusTimedOut, longrun.EventTimedOut, "States.Timeout", ""},
		{"eventbridge-failed.json", longrun.StatusFailed, longrun.EventFailed, "Job.Failed", "noodles burnt"},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.clock.Set(stop.Add(2 * time.Second))
			for range 2 { // EventBridge delivers at least once
				if out := f.mustHandle(t, tc.fixture); string(out) != "{}" {
					t.Fatalf("answered %s, want {}", out)
				}
			}
			e := f.store.get(execID)
			if e.Status != tc.status || e.Error != tc.errName || e.Cause != tc.cause || !e.StopDate.Equal(stop) {
				t.Fatalf("record %s %q %q %s, want %s %q %q %s", e.Status, e.Error, e.Cause, e.StopDate, tc.status, tc.errName, tc.cause, stop)
			}
			reqs := f.received()
			if len(reqs) != 1 {
				t.Fatalf("receiver got %d requests, want 1 for two copies of the event", len(reqs))
			}
			ev := f.verified(t, reqs[0])
			if ev.Type != tc.event || ev.Data.Status != tc.status || ev.Data.Error != tc.errName || !ev.Timestamp.Equal(stop) || ev.Data.ExecutionARN != execARN {
				t.Fatalf("webhook %+v, want %s", ev, tc.event)
			}
		})
	}
}

// FinalizeFailure records FAILED and starts delivery; Step Functions then
// emits a FAILED status change for the same execution. It must neither send
// again nor start a second deliver state machine — unless delivery stalled.
func TestFailedEventAfterFinalizeFailure(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.answer(500)
	f.mustHandle(t, "finalize-failed.json")
	f.clock.Set(t0.Add(3 * time.Second))
	f.mustHandle(t, "eventbridge-failed.json")
	if n, r := len(f.received()), f.redelivered(); n != 1 || len(r) != 1 {
		t.Fatalf("%d requests, Redeliver calls %v; want 1 and 1", n, r)
	}
	if e := f.store.get(execID); e.Error != "Job.Failed" || !e.StopDate.Equal(t0) {
		t.Fatalf("record %+v, want FinalizeFailure's outcome", e)
	}

	// Nobody made the attempt due at t0+5s: the deliver state machine is gone.
	f.clock.Set(t0.Add(5*time.Second + delivery.StallAfter + time.Second))
	f.mustHandle(t, "eventbridge-failed.json")
	if n, r := len(f.received()), f.redelivered(); n != 1 || len(r) != 2 || r[1] != longrun.DeliverName(execID, 1) {
		t.Fatalf("%d requests, Redeliver calls %v; want still 1 request and round 1 started", n, r)
	}
	if e := f.store.get(execID); e.Webhook.Round != 1 {
		t.Fatalf("delivery round %d, want 1 recorded", e.Webhook.Round)
	}
	// The restarted round is due at once, so it reads as driven: another
	// event right after starts no third round beside it.
	f.mustHandle(t, "eventbridge-failed.json")
	if r := f.redelivered(); len(r) != 2 {
		t.Fatalf("Redeliver calls %v, want no round beside the restarted one", r)
	}
}

func TestThinPayload(t *testing.T) {
	t.Parallel()
	big := `{"data":"` + strings.Repeat("x", 100) + `"}`
	f := setup(t, func(c *Config, _ *longrun.Execution) { c.ThinOver = 64 })
	payload := json.RawMessage(`{"action":"finalize","executionId":"` + execID + `","status":"SUCCEEDED","output":` + big + `}`)
	if _, err := f.n.Handle(t.Context(), payload); err != nil {
		t.Fatal(err)
	}
	reqs := f.received()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	ev := f.verified(t, reqs[0])
	if ev.Data.Output != nil || ev.Data.DescribeURL != "https://api.example.com/executions/"+execID || strings.Contains(string(reqs[0].body), `"output"`) {
		t.Fatalf("thin webhook %s, want no output and a describeUrl", reqs[0].body)
	}
	if e := f.store.get(execID); string(e.Output) != big {
		t.Fatalf("stored output %s, want the full output", e.Output)
	}

	// At the threshold the output is sent inline.
	g := setup(t, func(c *Config, _ *longrun.Execution) { c.ThinOver = len(big) })
	if _, err := g.n.Handle(t.Context(), payload); err != nil {
		t.Fatal(err)
	}
	if ev := g.verified(t, g.received()[0]); string(ev.Data.Output) != big || ev.Data.DescribeURL != "" {
		t.Fatalf("webhook %+v, want the output inline", ev.Data)
	}
}

func TestStoreFailureIsReturned(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		fail     func(*fakeStore)
		requests int // webhooks sent by the failed call and its retry
	}{
		{"finish fails", func(s *fakeStore) { s.failFinish = 1 }, 1},
		{"saving the delivery fails", func(s *fakeStore) { s.failSave = 1 }, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			tc.fail(f.store)
			if _, err := f.handle(t, "finalize-succeeded.json"); !errors.Is(err, errThrottled) {
				t.Fatalf("Handle error %v, want the store's error so the state machine retries", err)
			}
			if out, err := f.handle(t, "finalize-succeeded.json"); err != nil || string(out) != "{}" {
				t.Fatalf("retried finalize = %s, %v", out, err)
			}
			e := f.store.get(execID)
			if e.Status != longrun.StatusSucceeded || e.Webhook == nil || e.Webhook.State != longrun.DeliveryDelivered {
				t.Fatalf("after the retry: %+v, want SUCCEEDED and delivered", e)
			}
			reqs := f.received()
			if len(reqs) != tc.requests {
				t.Fatalf("%d webhooks sent, want %d", len(reqs), tc.requests)
			}
			for _, r := range reqs {
				f.verified(t, r) // a resend after a failed save keeps the event id
			}
		})
	}
}

func TestRedeliverFailureIsReturned(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.answer(500)
	f.redeliver = errors.New("sfn: throttled")
	if _, err := f.handle(t, "finalize-succeeded.json"); err == nil || !strings.Contains(err.Error(), "start webhook delivery") {
		t.Fatalf("Handle error %v, want the Redeliver failure", err)
	}
	f.mu.Lock()
	f.redeliver = nil
	f.mu.Unlock()
	f.mustHandle(t, "finalize-succeeded.json")
	if n, r := len(f.received()), f.redelivered(); n != 1 || len(r) != 2 {
		t.Fatalf("%d requests, Redeliver calls %v; want 1 request and Redeliver retried", n, r)
	}
}

func TestWebhookFailureNeverFailsNotify(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.srv.Close() // nobody listens any more
	if out := f.mustHandle(t, "finalize-succeeded.json"); string(out) != "{}" {
		t.Fatalf("answered %s", out)
	}
	e := f.store.get(execID)
	if e.Status != longrun.StatusSucceeded || e.Webhook.State != longrun.DeliveryPending || e.Webhook.Attempts[0].StatusCode != 0 || e.Webhook.Attempts[0].Error == "" {
		t.Fatalf("record %+v, delivery %+v; want SUCCEEDED, pending, the dial error recorded", e, e.Webhook)
	}
}

// A delivery that ended is never sent again by a deliver call (a leftover
// or duplicate loop): not after a 2xx, and above all not after 410 Gone. A
// redeliver request sets it pending first; then deliver sends.
func TestDeliverLeavesEndedDeliveryAlone(t *testing.T) {
	t.Parallel()
	for _, first := range []int{200, 410} {
		f := setup(t)
		f.answer(first, 204)
		f.mustHandle(t, "finalize-succeeded.json")
		f.clock.Set(t0.Add(time.Hour))
		if r := f.deliver(t); !r.Done {
			t.Fatalf("deliver after %d = %+v, want done", first, r)
		}
		if reqs := f.received(); len(reqs) != 1 {
			t.Fatalf("after %d a deliver call sent again: %d requests", first, len(reqs))
		}

		// What POST /executions/{id}/redeliver does before starting a loop.
		e := f.store.get(execID)
		d := *e.Webhook
		d.State, d.NextAttempt = longrun.DeliveryPending, t0.Add(time.Hour)
		if err := f.store.SaveDelivery(t.Context(), execID, d); err != nil {
			t.Fatal(err)
		}
		if r := f.deliver(t); !r.Done {
			t.Fatalf("redelivery after %d = %+v, want done", first, r)
		}
		e = f.store.get(execID)
		reqs := f.received()
		if len(reqs) != 2 || e.Webhook.State != longrun.DeliveryDelivered || len(e.Webhook.Attempts) != 2 {
			t.Fatalf("after %d and a redelivery: %d requests, %s", first, len(reqs), delivery.Describe(*e.Webhook))
		}
		f.verified(t, reqs[1])
	}
}

func TestWithoutCallback(t *testing.T) {
	t.Parallel()
	f := setup(t, func(_ *Config, e *longrun.Execution) { e.CallbackURL = "" })
	f.mustHandle(t, "finalize-succeeded.json")
	if e := f.store.get(execID); e.Status != longrun.StatusSucceeded || e.Webhook != nil {
		t.Fatalf("record %+v, want SUCCEEDED without a delivery", e)
	}
	if r := f.deliver(t); !r.Done {
		t.Fatalf("deliver = %+v, want done", r)
	}
	if n := len(f.received()); n != 0 {
		t.Fatalf("%d requests, want none", n)
	}
}

func TestDeliverBeforeTheEnd(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if r := f.deliver(t); !r.Done || len(f.received()) != 0 {
		t.Fatalf("deliver on a RUNNING execution = %+v, want done without sending", r)
	}
}

func TestUnknownExecution(t *testing.T) {
	t.Parallel()
	f := setup(t)
	other := strings.ReplaceAll(string(fixtureFile(t, "eventbridge-aborted.json")), execID, "0193ffff-0000-7000-8000-000000000000")
	if out, err := f.n.Handle(t.Context(), json.RawMessage(other)); err != nil || string(out) != "{}" {
		t.Fatalf("status change for an unknown execution = %s, %v; want {} (ignored)", out, err)
	}
	_, err := f.n.Handle(t.Context(), json.RawMessage(`{"action":"finalize","executionId":"nope","status":"SUCCEEDED"}`))
	if !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Fatalf("finalize of an unknown execution: %v, want ENOTFOUND", err)
	}
}

func TestInvalidPayloads(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, payload string }{
		{"not an object", `[1,2]`},
		{"empty object", `{}`},
		{"unknown action", `{"action":"explode","executionId":"x"}`},
		{"finalize without id", `{"action":"finalize","status":"SUCCEEDED"}`},
		{"finalize RUNNING", `{"action":"finalize","executionId":"` + execID + `","status":"RUNNING"}`},
		{"event from elsewhere", `{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{}}`},
		{"status change without name", `{"detail-type":"Step Functions Execution Status Change","source":"aws.states","detail":{"status":"ABORTED"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			if _, err := f.n.Handle(t.Context(), json.RawMessage(tc.payload)); !longrun.IsCode(err, longrun.EINVALID) {
				t.Fatalf("Handle(%s) = %v, want EINVALID", tc.payload, err)
			}
			if e := f.store.get(execID); e.Status != longrun.StatusRunning {
				t.Fatalf("record changed to %s", e.Status)
			}
		})
	}
}

// A retried finalize that finds its round's loop already ended (its Deliver
// retries used up) moves the pending delivery to the next round instead of
// leaving it with nobody driving it.
func TestFinalizeAfterTheRoundsLoopEnded(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.answer(500)
	f.mustHandle(t, "finalize-succeeded.json")
	f.mu.Lock()
	f.ended = map[int]bool{0: true}
	f.mu.Unlock()
	f.clock.Set(t0.Add(time.Second))
	f.mustHandle(t, "finalize-succeeded.json")
	want := []string{longrun.DeliverName(execID, 0), longrun.DeliverName(execID, 0), longrun.DeliverName(execID, 1)}
	if r := f.redelivered(); fmt.Sprint(r) != fmt.Sprint(want) {
		t.Fatalf("Redeliver calls %v, want %v", r, want)
	}
	e := f.store.get(execID)
	if e.Webhook.Round != 1 || e.Webhook.State != longrun.DeliveryPending || e.Webhook.RoundAttempts != 1 {
		t.Fatalf("delivery %+v, want pending in round 1, keeping its place in the schedule", e.Webhook)
	}
	if n := len(f.received()); n != 1 {
		t.Fatalf("%d requests, want the first attempt only (the new loop makes the next)", n)
	}
}
