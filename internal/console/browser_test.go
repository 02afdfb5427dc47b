package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/client"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/tenant"
)

var screenshots = flag.String("screenshots", "", "write the console's screenshots to this directory (go test ./internal/console -run Browser -screenshots ../../docs)")

const chromium = "/usr/bin/chromium"

// browserDeps finds what the browser test needs; `make test` installs both
// (make browser-deps). Outside CI a missing piece skips the test, with the
// command that installs it; in CI it fails.
func browserDeps(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium+" (.ci/chromium.sh)")
	}
	if _, err := os.Stat(filepath.Join("testdata", "browser", "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "playwright-core (make browser-deps)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("browser test needs %s", strings.Join(missing, ", "))
	}
	t.Skipf("browser test needs %s", strings.Join(missing, ", "))
}

// job is the test's job: its input says how it ends.
func job(ctx context.Context, input json.RawMessage, report func(longrun.Progress)) (json.RawMessage, error) {
	var in struct{ Mode string }
	_ = json.Unmarshal(input, &in)
	switch in.Mode {
	case "fail":
		return nil, &longrun.JobError{Name: "Noodles.Overcooked", Cause: "the timer was set to 40 minutes"}
	case "block":
		report(longrun.Progress{Percent: 42.4, Message: "boiling water"})
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return json.RawMessage(`{"bowl":"ready"}`), nil
}

// TestBrowser drives the console of a real `longrun dev` app in headless
// Chromium: every status listed, the graph with the path lit, a stop and a
// redelivery seen without a reload, and another tenant seeing nothing.
func TestBrowser(t *testing.T) {
	t.Parallel()
	browserDeps(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer receiver.Close()

	app, err := devapp.Open(ctx, devapp.Config{
		DataDir:               t.TempDir(),
		TemplatePath:          filepath.Join("..", "..", "template.yaml"),
		AllowLoopbackWebhooks: true,
		WebhookSchedule:       "1s",
		Jobs:                  jobs(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()
	now := time.Now()
	dev, err := tenant.CreateKey(ctx, app.Tenants, "dev", now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tenant.CreateKey(ctx, app.Tenants, "other", now)
	if err != nil {
		t.Fatal(err)
	}

	c := client.New(base, dev.APIKey)
	start := func(name, mode, callback string) string {
		t.Helper()
		e, err := c.Start(ctx, client.StartRequest{Name: name, Input: json.RawMessage(`{"mode":"` + mode + `"}`), CallbackURL: callback}, "")
		if err != nil {
			t.Fatal(err)
		}
		return e.ExecutionID
	}
	succeeded := start("ramen-ok", "ok", receiver.URL+"/hook")
	failed := start("ramen-burnt", "fail", "")
	running := start("ramen-slow", "block", "")
	toStop := start("ramen-to-stop", "block", "")
	aborted := start("ramen-stopped", "block", "")
	waitFor(t, c, succeeded, func(e *client.Execution) bool {
		return e.Webhook != nil && e.Webhook.State == "delivered"
	})
	waitFor(t, c, failed, func(e *client.Execution) bool { return e.Status == "FAILED" })
	for _, id := range []string{running, toStop, aborted} {
		waitFor(t, c, id, func(e *client.Execution) bool { return e.Progress != nil })
	}
	if _, err := c.Stop(ctx, aborted, "", ""); err != nil {
		t.Fatal(err)
	}
	// No job of the main state machine ends TIMED_OUT (only a whole
	// execution's timeout does, and it has none), so that row is written to
	// the store as notify would record it.
	timedOut := "01a00000-0000-7000-8000-000000000001"
	if _, _, err := app.Executions.CreateExecution(ctx, &longrun.Execution{
		ID: timedOut, ARN: app.Engine.ExecutionARN(timedOut), Tenant: "dev", Name: "ramen-forgotten",
		Status: longrun.StatusRunning, Input: json.RawMessage(`{}`), StartDate: now.Add(-time.Hour).UTC(),
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := app.Executions.FinishExecution(ctx, timedOut, longrun.Outcome{Status: longrun.StatusTimedOut, Error: "States.Timeout", StopDate: now.UTC()}); err != nil {
		t.Fatal(err)
	}

	shots := *screenshots
	if shots == "" {
		shots = t.TempDir()
	} else if shots, err = filepath.Abs(shots); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{
		"chromium":   chromium,
		"consoleURL": devapp.ConsoleURL(base, dev.APIKey),
		"otherURL":   devapp.ConsoleURL(base, other.APIKey),
		"base":       base,
		"keys":       []string{dev.APIKey, other.APIKey},
		"ids": map[string]string{
			"succeeded": succeeded, "failed": failed, "running": running, "toStop": toStop, "aborted": aborted, "timedOut": timedOut,
		},
		"screenshots": shots,
	})
	runCtx, stop := context.WithTimeout(ctx, 90*time.Second)
	defer stop()
	cmd := exec.CommandContext(runCtx, "node", filepath.Join("testdata", "browser", "console.mjs"))
	cmd.Env = append(os.Environ(), "CONSOLE_TEST="+string(cfg))
	out, err := cmd.CombinedOutput()
	t.Logf("browser:\n%s", out)
	if err != nil {
		t.Fatalf("browser test: %v", err)
	}
	// The stop went through the API, to the engine: the execution really ended.
	e, err := c.Describe(ctx, toStop)
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != "ABORTED" {
		t.Errorf("after the console's Stop, %s is %s, want ABORTED", toStop, e.Status)
	}
}

// waitFor polls describe until ok (the app runs on the real clock here: it
// is a whole program in a browser test).
func waitFor(t *testing.T, c *client.Client, id string, ok func(*client.Execution) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		e, err := c.Describe(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(e) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s never got there: %+v", id, e)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jobs registers the test's job as the only kind, as a user would.
func jobs() *longrun.Registry {
	r := longrun.NewRegistry()
	r.Handle("test", job, longrun.JobOptions{})
	return r
}
