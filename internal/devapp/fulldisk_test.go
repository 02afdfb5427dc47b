package devapp_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
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
		DataDir: dir, TemplatePath: filepath.Join("..", "..", "template.yaml"), Job: noop.Job,
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
