package devapp_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/fakeclock"
	"github.com/longrun/longrun/internal/sqlite"
	"github.com/longrun/longrun/jobs/noop"
)

// On a full disk (every commit fails, as with SQLITE_FULL) longrun dev
// still starts, with the same API key, and answers reads; writes get 503
// with Retry-After; once space returns, work goes on without a restart.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	var full atomic.Bool
	errFull := errors.New("database or disk is full (injected)")
	cfg := devapp.Config{
		DataDir: dir, TemplatePath: filepath.Join("..", "..", "template.yaml"), Jobs: registryOf(noop.Job),
		DBOptions: []sqlite.Option{sqlite.WithWriteFault(func() error {
			if full.Load() {
				return errFull
			}
			return nil
		})},
	}
	run := func() (*devapp.App, string, func()) {
		t.Helper()
		app, err := devapp.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		served := make(chan error, 1)
		go func() { served <- app.Serve(sctx, ln) }()
		return app, "http://" + ln.Addr().String(), func() {
			cancel()
			if err := <-served; err != nil {
				t.Error(err)
			}
			app.Close()
		}
	}

	app, url, stop := run()
	key, err := app.DevKey(ctx, "dev", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	done := newClient(t, url, key.APIKey).start(t)
	waitStatus(t, app, done, longrun.StatusSucceeded)
	stop()

	full.Store(true)
	app, url, stop = run() // a restart on the full disk
	defer stop()
	again, err := app.DevKey(ctx, "dev", time.Now())
	if err != nil || again.APIKey != key.APIKey {
		t.Fatalf("dev key on a full disk: %v %v, want the same key", again, err)
	}
	c := newClient(t, url, key.APIKey)
	if code, out, _ := c.do(t, http.MethodGet, "/executions/"+done, nil); code != http.StatusOK {
		t.Fatalf("describe on a full disk: %d %s", code, out)
	}
	if code, out, _ := c.do(t, http.MethodGet, "/executions", nil); code != http.StatusOK {
		t.Fatalf("list on a full disk: %d %s", code, out)
	}
	code, out, h := c.do(t, http.MethodPost, "/start-execution", map[string]any{"input": map[string]any{}})
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("start on a full disk: %d Retry-After %q %s, want 503 with Retry-After", code, h.Get("Retry-After"), out)
	}

	full.Store(false) // space returns
	id := c.start(t)
	waitStatus(t, app, id, longrun.StatusSucceeded)
}

// A webhook whose retries fall on a full disk is delivered once space
// returns, without a restart: the engine parks what it cannot commit and
// tries again.
func TestFullDiskDeliveryResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := fakeclock.New()
	var full, failing atomic.Bool
	failing.Store(true)
	hits := make(chan struct{}, 100)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits <- struct{}{}
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer recv.Close()
	app, url := serve(t, devapp.Config{
		Jobs: registryOf(noop.Job), AllowLoopbackWebhooks: true, WebhookSchedule: "10s,10s,10s,10s,10s,10s",
		Clock: clock,
		DBOptions: []sqlite.Option{sqlite.WithWriteFault(func() error {
			if full.Load() {
				return errors.New("database or disk is full (injected)")
			}
			return nil
		})},
	})
	c := newClient(t, url, keyFor(t, app, "acme"))
	id := startWithCallback(t, c, recv.URL)
	<-hits // the first attempt, refused
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err := app.Executions.GetExecution(ctx, "", id)
		if err == nil && e.Webhook != nil && len(e.Webhook.Attempts) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first attempt not recorded: %+v %v", e, err)
		}
		time.Sleep(time.Millisecond)
	}
	waitIdleMain(t, app)

	full.Store(true)
	failing.Store(false)
	for range 60 { // a minute on the clock with the disk full: nothing can commit
		clock.Advance(time.Second)
		time.Sleep(2 * time.Millisecond)
	}
	if e, _ := app.Executions.GetExecution(ctx, "", id); e.Webhook.State != longrun.DeliveryPending {
		t.Fatalf("delivery %s while the disk was full", e.Webhook.State)
	}

	full.Store(false) // space returns
	deadline = time.Now().Add(10 * time.Second)
	for {
		e, err := app.Executions.GetExecution(ctx, "", id)
		if err == nil && e.Webhook.State == longrun.DeliveryDelivered {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook not delivered 10s after space returned: %+v %v", e.Webhook, err)
		}
		clock.Advance(time.Second)
		time.Sleep(2 * time.Millisecond)
	}
}

// waitIdleMain waits until no execution of the main machine runs.
func waitIdleMain(t *testing.T, app *devapp.App) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for count(t, app, `SELECT count(*) FROM local_executions WHERE status = 'RUNNING' AND machine = 'LongrunStateMachine'`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the main machine still runs after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
