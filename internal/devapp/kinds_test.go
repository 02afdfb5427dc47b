package devapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun"
	longrunclient "github.com/longrun/longrun/client"
	"github.com/longrun/longrun/internal/devapp"
)

// serveKinds opens the local app with reg's kinds and serves it on port 0; it
// returns a client of a fresh tenant.
func serveKinds(t *testing.T, reg *longrun.Registry) *longrunclient.Client {
	t.Helper()
	app, url := serve(t, devapp.Config{Jobs: reg})
	return longrunclient.New(url, keyFor(t, app, "acme"))
}

// Kinds end to end on one machine: each kind runs its own job, the default
// when "job" is omitted; a failing attempt is retried with the attempt
// number in the job's context; describe, list and the refusals say which
// kind and why.
func TestJobKindsLocally(t *testing.T) {
	t.Parallel()
	reg := longrun.NewRegistry()
	reg.Handle("greet", func(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
		return json.RawMessage(`{"hello":"world"}`), nil
	}, longrun.JobOptions{})
	reg.Handle("shout", func(ctx context.Context, in json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
		info, _ := longrun.JobInfoFromContext(ctx)
		if info.Attempt == 1 {
			return nil, errors.New("the first attempt always fails")
		}
		var req struct{ Text string }
		if err := json.Unmarshal(in, &req); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"text": strings.ToUpper(req.Text), "attempt": info.Attempt, "kind": info.Kind})
	}, longrun.JobOptions{
		InputSchema: json.RawMessage(`{"type":"object","required":["text"],"properties":{"text":{"type":"string","minLength":1}}}`),
		Retry:       longrun.RetryPolicy{MaxAttempts: 2, Backoff: time.Millisecond},
		Timeout:     2 * time.Minute,
	})
	c := serveKinds(t, reg)
	ctx := t.Context()

	run := func(req longrunclient.StartRequest) *longrunclient.Execution {
		t.Helper()
		started, err := c.Start(ctx, req, "")
		if err != nil {
			t.Fatalf("start %+v: %v", req, err)
		}
		e, err := c.Wait(ctx, started.ExecutionID, 10*time.Millisecond, nil)
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return e
	}
	if e := run(longrunclient.StartRequest{Input: json.RawMessage(`{}`)}); e.Status != "SUCCEEDED" || e.Job != "greet" || string(e.Output) != `{"hello":"world"}` {
		t.Fatalf("default kind: %s job %q output %s error %s", e.Status, e.Job, e.Output, e.Cause)
	}
	shout := run(longrunclient.StartRequest{Input: json.RawMessage(`{"text":"hi"}`), Job: "shout"})
	if shout.Status != "SUCCEEDED" || shout.Job != "shout" || string(shout.Output) != `{"attempt":2,"kind":"shout","text":"HI"}` {
		t.Fatalf("shout: %s job %q output %s error %s", shout.Status, shout.Job, shout.Output, shout.Cause)
	}

	page, err := c.ListExecutions(ctx, longrunclient.ListQuery{Job: "shout"})
	if err != nil || len(page.Executions) != 1 || page.Executions[0].ExecutionID != shout.ExecutionID || page.Executions[0].Job != "shout" {
		t.Fatalf("list job=shout: %+v, %v; want the one shout", page, err)
	}

	for _, tc := range []struct {
		req        longrunclient.StartRequest
		detail     string
		wantFields []longrunclient.FieldError
	}{
		{longrunclient.StartRequest{Input: json.RawMessage(`{}`), Job: "whisper"}, `known kinds: "greet", "shout"`, nil},
		{longrunclient.StartRequest{Input: json.RawMessage(`{"text":""}`), Job: "shout"}, `at /input/text: minLength`, []longrunclient.FieldError{{Pointer: "/input/text", Detail: "minLength: got 0, want 1"}}},
		{longrunclient.StartRequest{Input: json.RawMessage(`{"text":3}`), Job: "shout"}, `at /input/text: got number, want string`, []longrunclient.FieldError{{Pointer: "/input/text", Detail: "got number, want string"}}},
	} {
		_, err := c.Start(ctx, tc.req, "")
		var p *longrunclient.Problem
		if !errors.As(err, &p) || p.Status != http.StatusBadRequest || !strings.Contains(p.Detail, tc.detail) || !slices.Equal(p.Errors, tc.wantFields) {
			t.Errorf("start %+v = %v (%+v), want a 400 saying %q with fields %v", tc.req, err, p, tc.detail, tc.wantFields)
		}
	}
	all, err := c.ListExecutions(ctx, longrunclient.ListQuery{})
	if err != nil || len(all.Executions) != 2 {
		t.Fatalf("list = %+v, %v; want only the two started executions: a refused start stores nothing", all, err)
	}
}

// A kind whose Timeout SQS cannot honour stops `longrun dev` at start-up,
// named.
func TestOpenRefusesATimeoutItCannotHonour(t *testing.T) {
	t.Parallel()
	reg := longrun.NewRegistry()
	reg.Handle("forever", func(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
		return nil, nil
	}, longrun.JobOptions{Timeout: 24 * time.Hour})
	app, err := devapp.Open(context.Background(), devapp.Config{DataDir: t.TempDir(), TemplatePath: filepath.Join("..", "..", "template.yaml"), Jobs: reg})
	if err == nil {
		app.Close()
		t.Fatal("Open succeeded with a 24 h Timeout")
	}
	if !strings.Contains(err.Error(), `job "forever": Timeout 24h0m0s cannot be honoured: it is over 12h0m0s (SQS keeps a message in flight`) {
		t.Fatalf("Open: %v", err)
	}
}
