package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/client"
)

func nopJob(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
	return nil, nil
}

// kinds is a registry of three kinds: ramen (the default, any input),
// signup (an input schema) and report (its own timeout).
func kinds() *longrun.Registry {
	r := longrun.NewRegistry()
	r.Handle("ramen", nopJob, longrun.JobOptions{})
	r.Handle("signup", nopJob, longrun.JobOptions{InputSchema: json.RawMessage(`{
		"type": "object", "required": ["email", "seats"],
		"properties": {"email": {"type": "string", "format": "email"}, "seats": {"type": "integer", "minimum": 1}}
	}`)})
	r.Handle("report", nopJob, longrun.JobOptions{Timeout: 90 * time.Second})
	return r
}

func withKinds(c *Config) { c.Jobs = kinds() }

func TestStartJobKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		body        string
		wantJob     string
		wantTimeout int
	}{
		{name: "no job: the first kind", body: `{"input":{"seconds":1}}`, wantJob: "ramen", wantTimeout: limits.TimeoutSeconds},
		{name: "named kind", body: `{"input":{"email":"a@example.com","seats":2},"job":"signup"}`, wantJob: "signup", wantTimeout: limits.TimeoutSeconds},
		{name: "kind with its own timeout", body: `{"input":{},"job":"report"}`, wantJob: "report", wantTimeout: 90},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t, withKinds)
			id := hs.start(t, tt.body)
			started := hs.orch.started()
			if len(started) != 1 || started[0].Job != tt.wantJob || started[0].Limits.TimeoutSeconds != tt.wantTimeout ||
				started[0].Limits.HeartbeatSeconds != limits.HeartbeatSeconds {
				t.Fatalf("state input %+v, want job %q with timeout %d", started, tt.wantJob, tt.wantTimeout)
			}
			if e, _ := hs.store.execution(id); e.Job != tt.wantJob {
				t.Fatalf("stored job %q, want %q", e.Job, tt.wantJob)
			}
			var got client.Execution
			decode(t, hs.do(t, "GET", "/executions/"+id, hs.acme, ""), &got)
			if got.Job != tt.wantJob {
				t.Fatalf("describe job %q, want %q", got.Job, tt.wantJob)
			}
		})
	}
}

func TestStartRefusesBadKindOrInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		details    []string
		wantFields []longrun.FieldError
	}{
		{name: "unknown kind", body: `{"input":{},"job":"transcode"}`,
			details: []string{`"job" "transcode" is not a kind this deployment runs`, `"ramen", "signup", "report"`}},
		{name: "missing field", body: `{"input":{"email":"a@example.com"},"job":"signup"}`,
			details:    []string{`input schema of job "signup"`, "at /input: missing property 'seats'"},
			wantFields: []longrun.FieldError{{Pointer: "/input", Detail: "missing property 'seats'"}}},
		{name: "two fields wrong", body: `{"input":{"email":"nobody","seats":0},"job":"signup"}`,
			details: []string{"/input/email", "/input/seats"},
			wantFields: []longrun.FieldError{
				{Pointer: "/input/email", Detail: "'nobody' is not valid email: missing @"},
				{Pointer: "/input/seats", Detail: "minimum: got 0, want 1"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t, withKinds)
			p := wantProblem(t, hs.do(t, "POST", "/start-execution", hs.acme, tt.body), http.StatusBadRequest, tt.details...)
			slices.SortFunc(p.Errors, func(a, b longrun.FieldError) int { return strings.Compare(a.Pointer, b.Pointer) })
			if !slices.Equal(p.Errors, tt.wantFields) {
				t.Fatalf("errors %+v, want %+v", p.Errors, tt.wantFields)
			}
			if hs.store.count() != 0 || len(hs.orch.started()) != 0 {
				t.Fatal("a refused start stored or started something")
			}
		})
	}
}

// Without a registry (routes that never start anything) a start may not
// name a kind.
func TestStartWithoutRegistry(t *testing.T) {
	t.Parallel()
	hs := setup(t)
	wantProblem(t, hs.do(t, "POST", "/start-execution", hs.acme, `{"input":{},"job":"ramen"}`), http.StatusBadRequest, "no job kinds registered")
	hs.start(t, `{"input":{}}`)
}

// The idempotency hash of a request that names no kind is what it was
// before kinds, and naming the default kind explicitly is a different body.
func TestStartIdempotencyWithKinds(t *testing.T) {
	t.Parallel()
	hs := setup(t, withKinds)
	body := `{"input":{"seconds":1}}`
	// The body hashed before kinds existed: a key used then replays now.
	before := sha256.Sum256([]byte(`{"input":{"seconds":1},"callbackUrl":"","name":""}`))
	if got := requestHash(startRequest{Input: json.RawMessage(`{"seconds":1}`)}); got != hex.EncodeToString(before[:]) {
		t.Fatalf("hash of a request without a kind changed: %s", got)
	}
	first := hs.do(t, "POST", "/start-execution", hs.acme, body, "Idempotency-Key", "k1")
	again := hs.do(t, "POST", "/start-execution", hs.acme, body, "Idempotency-Key", "k1")
	if first.Code != http.StatusAccepted || again.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d then %d %s", first.Code, again.Code, again.Body)
	}
	// The replay starts the same execution again (idempotently), as the same kind.
	for _, in := range hs.orch.started() {
		if in.Job != "ramen" {
			t.Fatalf("started %+v, want the default kind ramen", in)
		}
	}
	wantProblem(t, hs.do(t, "POST", "/start-execution", hs.acme, `{"input":{"seconds":1},"job":"report"}`, "Idempotency-Key", "k1"), http.StatusConflict)
}

func TestStartRoutesByTimeoutWithABackstop(t *testing.T) {
	t.Parallel()
	routed := func(c *Config) {
		c.Jobs = kinds()
		c.Queues = Routing{Jobs: "https://sqs/jobs", Long: "https://sqs/long", LongerThan: 100 * time.Second}
		c.QueueWait = time.Hour
	}
	tests := []struct {
		name, body, wantQueue string
		wantJobLimit          int
	}{
		// ramen has no Timeout of its own: the deployment's hour is over
		// the 100 s the Lambda worker can run.
		{name: "the deployment's limit over the Lambda worker's: the long queue", body: `{"input":{}}`, wantQueue: "https://sqs/long", wantJobLimit: limits.TimeoutSeconds},
		// report's own 90 s fit in the Lambda worker's 100 s.
		{name: "a Timeout within the Lambda worker's: the jobs queue", body: `{"input":{},"job":"report"}`, wantQueue: "https://sqs/jobs", wantJobLimit: 90},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t, routed)
			hs.start(t, tt.body)
			started := hs.orch.started()
			if len(started) != 1 {
				t.Fatalf("started %+v", started)
			}
			in := started[0]
			// The job's own limit is for the worker; the Work state waits for
			// the queue as well, never less than the job's limit.
			if in.QueueURL != tt.wantQueue || in.Limits.TimeoutSeconds != tt.wantJobLimit || in.BackstopSeconds != tt.wantJobLimit+3600 {
				t.Fatalf("state input queue %q, job limit %d, task timeout %d; want %q, %d, %d",
					in.QueueURL, in.Limits.TimeoutSeconds, in.BackstopSeconds, tt.wantQueue, tt.wantJobLimit, tt.wantJobLimit+3600)
			}
		})
	}
}

func TestBackstopDefaultsToADay(t *testing.T) {
	t.Parallel()
	if got := longrun.Backstop(90, 0); got != 90+86400 {
		t.Fatalf("Backstop(90, 0) = %d, want the job's 90 s plus a day", got)
	}
	if got := (Routing{Jobs: "j"}).QueueFor(12 * time.Hour); got != "j" {
		t.Fatalf("without a long queue every kind goes to the jobs queue, got %q", got)
	}
}
