package devapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/fakeclock"
	"github.com/longrun/longrun/internal/tenant"
	"github.com/longrun/longrun/jobs/noop"
)

// Large payloads are stored apart from their rows (the engine's chunks in
// local_blobs, the record's in execution_payloads); the sweeper deletes
// them with the executions, leaving nothing behind, and until then describe
// and the history return them whole.
func TestRetentionSweepsPayloads(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := fakeclock.New()
	app, err := devapp.Open(ctx, devapp.Config{
		DataDir: t.TempDir(), TemplatePath: filepath.Join("..", "..", "template.yaml"), Jobs: registryOf(noop.Job),
		Retention: time.Hour, Clock: clock.Now, Timer: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	swept := make(chan struct{}, 16)
	app.OnSweep(func() { swept <- struct{}{} })
	key, err := tenant.CreateKey(ctx, app.Tenants, "acme", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	c := newClient(t, "http://"+ln.Addr().String(), key.APIKey)

	input := json.RawMessage(`{"data":"` + randomText(7, 64<<10) + `"}`) // the no-op job returns it as its output
	code, out, _ := c.do(t, http.MethodPost, "/start-execution", map[string]any{"input": input})
	if code != http.StatusAccepted {
		t.Fatalf("start: %d %s", code, out)
	}
	var started struct{ ExecutionID string }
	if err := json.Unmarshal(out, &started); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, app, started.ExecutionID, longrun.StatusSucceeded)
	waitIdle(t, app)
	<-swept // the sweep at start

	code, out, _ = c.do(t, http.MethodPost, "/describe-execution", map[string]string{"executionId": started.ExecutionID})
	var described struct{ Input, Output json.RawMessage }
	if err := json.Unmarshal(out, &described); code != http.StatusOK || err != nil {
		t.Fatalf("describe: %d %v", code, err)
	}
	if !bytes.Equal(described.Input, input) || !bytes.Equal(described.Output, input) {
		t.Errorf("describe: input %d, output %d bytes, want %d each", len(described.Input), len(described.Output), len(input))
	}
	for _, table := range []string{"local_blobs", "execution_payloads"} {
		if n := count(t, app, `SELECT count(*) FROM `+table); n == 0 {
			t.Fatalf("nothing in %s: the payloads are stored elsewhere, this test tests nothing", table)
		}
	}

	clock.Advance(61 * time.Minute)
	<-swept
	for _, table := range []string{"local_blobs", "execution_payloads", "local_history", "executions"} {
		if n := count(t, app, `SELECT count(*) FROM `+table); n != 0 {
			t.Errorf("%d rows left in %s after the retention", n, table)
		}
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
