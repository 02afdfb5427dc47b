package devapp_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/tenant"
)

// blockingJob runs until release is closed when its input says
// {"block": true}, and ends at once otherwise.
func blockingJob(release <-chan struct{}) longrun.Job {
	return func(ctx context.Context, input json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
		var in struct{ Block bool }
		_ = json.Unmarshal(input, &in)
		if in.Block {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return json.RawMessage(`{}`), nil
	}
}

// serve opens an app (see openApp) and serves it on a loopback port until
// the test ends (see listen).
func serve(t *testing.T, cfg devapp.Config) (*devapp.App, string) {
	t.Helper()
	app := openApp(t, cfg)
	return app, listen(t, app)
}

// openApp opens an app that is closed when the test ends: in a fresh data
// directory, following the repository's template unless cfg names another.
func openApp(t *testing.T, cfg devapp.Config) *devapp.App {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.DataDir = t.TempDir()
	if cfg.TemplatePath == "" {
		cfg.TemplatePath = filepath.Join("..", "..", "template.yaml")
	}
	app, err := devapp.Open(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		app.Close()
	})
	return app
}

// listen serves app (its engine, workers and API) on a loopback port until
// the test ends, and returns the API's URL. Serve must end without error.
func listen(t *testing.T, app *devapp.App) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return "http://" + ln.Addr().String()
}

func keyFor(t *testing.T, app *devapp.App, tenantID string) string {
	t.Helper()
	k, err := tenant.CreateKey(context.Background(), app.Tenants, tenantID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return k.APIKey
}

// Past the bound on running executions a start answers 429 with
// Retry-After, and is accepted again once executions end.
func TestStartOverTheBacklogBound(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	app, url := serve(t, devapp.Config{Jobs: registryOf(blockingJob(release)), MaxRunning: 3})
	c := newClient(t, url, keyFor(t, app, "acme"))
	block := map[string]any{"input": map[string]bool{"block": true}}
	var ids []string
	for range 3 {
		code, out, _ := c.do(t, http.MethodPost, "/start-execution", block)
		if code != http.StatusAccepted {
			t.Fatalf("start within the bound: %d %s", code, out)
		}
		var e struct{ ExecutionID string }
		_ = json.Unmarshal(out, &e)
		ids = append(ids, e.ExecutionID)
	}
	code, out, h := c.do(t, http.MethodPost, "/start-execution", block)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("start over the bound: %d Retry-After %q %s, want 429 with Retry-After", code, h.Get("Retry-After"), out)
	}
	if n := count(t, app, `SELECT count(*) FROM executions`); n != 3 {
		t.Errorf("%d records after a refused start, want 3", n)
	}
	close(release)
	for _, id := range ids {
		waitStatus(t, app, id, longrun.StatusSucceeded)
	}
	waitIdle(t, app)
	c.start(t)
}

// A tenant whose long jobs fill its share of the workers does not stall
// another tenant's job.
func TestTenantWithLongJobsDoesNotStallAnother(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	app, url := serve(t, devapp.Config{Jobs: registryOf(blockingJob(release)), Workers: 2, TenantWorkers: 1})
	hog := newClient(t, url, keyFor(t, app, "hog"))
	for range 4 {
		if code, out, _ := hog.do(t, http.MethodPost, "/start-execution", map[string]any{"input": map[string]bool{"block": true}}); code != http.StatusAccepted {
			t.Fatalf("start: %d %s", code, out)
		}
	}
	other := newClient(t, url, keyFor(t, app, "other"))
	id := other.start(t)
	waitStatus(t, app, id, longrun.StatusSucceeded)
	if n := count(t, app, `SELECT count(*) FROM executions WHERE tenant = 'hog' AND status = 'RUNNING'`); n != 4 {
		t.Errorf("%d of hog's jobs running, want all 4 still blocked", n)
	}
}

// longrun dev's describe names the state a running execution is in (the
// live line of `longrun wait` shows it).
func TestDescribeNamesTheStateLocally(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	app, url := serve(t, devapp.Config{Jobs: registryOf(blockingJob(release))})
	c := newClient(t, url, keyFor(t, app, "acme"))
	code, body, _ := c.do(t, http.MethodPost, "/start-execution", map[string]any{"input": map[string]bool{"block": true}})
	var started struct{ ExecutionID string }
	if err := json.Unmarshal(body, &started); err != nil || code != http.StatusAccepted {
		t.Fatalf("start: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _ = c.do(t, http.MethodGet, "/executions/"+started.ExecutionID, nil)
		var e struct{ Status, State string }
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		if e.Status == "RUNNING" && e.State == "Work" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("describe: %s, want RUNNING in state Work", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
