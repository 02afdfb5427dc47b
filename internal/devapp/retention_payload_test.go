package devapp_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/fakeclock"
)

// Large payloads are stored apart from their rows, once, as chunks held by
// the engine's execution and the record (payload_chunks, payload_holders);
// the sweeper deletes them with the executions, leaving nothing behind, and
// until then describe and the history return them whole.
func TestRetentionSweepsPayloads(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	app, c, swept := serveRetained(t, clock)

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
	for _, table := range []string{"payload_chunks", "payload_holders"} {
		if n := count(t, app, `SELECT count(*) FROM `+table); n == 0 {
			t.Fatalf("nothing in %s: the payloads are stored elsewhere, this test tests nothing", table)
		}
	}

	clock.Advance(61 * time.Minute)
	<-swept
	for _, table := range []string{"payload_chunks", "payload_holders", "queue_messages", "local_history", "executions"} {
		if n := count(t, app, `SELECT count(*) FROM `+table); n != 0 {
			t.Errorf("%d rows left in %s after the retention", n, table)
		}
	}
}
