package api

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/auth"
	"github.com/longrun/longrun/internal/sqlite"
)

// TestOnSQLite runs the API over the real SQLite adapters, as `longrun dev`
// does, to check the handlers against the store contract and not only
// against this package's fakes.
func TestOnSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longrun.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	tenants := sqlite.NewTenantStore(db)
	hs := setup(t, func(c *Config) {
		c.Executions = sqlite.NewExecutionStore(db)
		c.Tenants = tenants
	})
	for key, tenant := range map[string]string{hs.acme: "acme", hs.globex: "globex"} {
		if err := tenants.PutAPIKey(ctx, auth.HashKey(key), tenant); err != nil {
			t.Fatal(err)
		}
	}

	// Start, then replay and conflict on the same Idempotency-Key.
	first := hs.do(t, "POST", "/start-execution", hs.acme, `{"input":{"seconds":1},"callbackUrl":"https://example.com/h"}`, "Idempotency-Key", "k1")
	var started startResponse
	decode(t, first, &started)
	replay := hs.do(t, "POST", "/start-execution", hs.acme, `{"input": {"seconds": 1}, "callbackUrl": "https://example.com/h"}`, "Idempotency-Key", "k1")
	if first.Code != 202 || replay.Code != 202 || replay.Body.String() != first.Body.String() || replay.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("start %d %s, replay %d %s", first.Code, first.Body, replay.Code, replay.Body)
	}
	wantProblem(t, hs.do(t, "POST", "/start-execution", hs.acme, `{"input":2}`, "Idempotency-Key", "k1"), 409)

	// Two more, a second apart, for a list of three, newest first.
	ids := []string{started.ExecutionID}
	for range 2 {
		hs.clock.Advance(time.Second)
		ids = append(ids, hs.start(t, `{"input":null}`))
	}
	w := hs.do(t, "GET", "/executions?limit=2", hs.acme, "")
	var page listResponse
	decode(t, w, &page)
	if len(page.Executions) != 2 || page.Executions[0].ExecutionID != ids[2] || page.NextToken == "" {
		t.Fatalf("first page %s", w.Body)
	}
	w = hs.do(t, "GET", "/executions?limit=2&nextToken="+page.NextToken, hs.acme, "")
	page = listResponse{}
	decode(t, w, &page)
	if len(page.Executions) != 1 || page.Executions[0].ExecutionID != ids[0] || page.NextToken != "" {
		t.Fatalf("second page %s", w.Body)
	}
	wantProblem(t, hs.do(t, "GET", "/executions?nextToken=forged", hs.acme, ""), 400, "nextToken")

	// Another tenant sees nothing.
	wantProblem(t, hs.do(t, "GET", "/executions/"+ids[0], hs.globex, ""), 404)
	wantProblem(t, hs.do(t, "DELETE", "/executions/"+ids[0], hs.globex, ""), 404)
	if w := hs.do(t, "GET", "/executions", hs.globex, ""); !strings.Contains(w.Body.String(), `"executions":[]`) {
		t.Fatalf("globex lists %s", w.Body)
	}

	// Stop, then describe shows ABORTED; stopping again is 409.
	if w := hs.do(t, "POST", "/stop-execution", hs.acme, `{"executionId":"`+ids[0]+`","cause":"enough"}`); w.Code != http.StatusOK {
		t.Fatalf("stop %d %s", w.Code, w.Body)
	}
	w = hs.do(t, "GET", "/executions/"+ids[0], hs.acme, "")
	if !strings.Contains(w.Body.String(), `"status":"ABORTED","input":{"seconds":1},"error":"Execution.Stopped","cause":"enough"`) || w.Header().Get("Retry-After") != "" {
		t.Fatalf("describe after stop %s", w.Body)
	}
	wantProblem(t, hs.do(t, "DELETE", "/executions/"+ids[0], hs.acme, ""), 409, "already ended")

	// Redeliver once notify has recorded a delivery.
	wantProblem(t, hs.do(t, "POST", "/executions/"+ids[0]+"/redeliver", hs.acme, ""), 409, "not been sent yet")
	if err := hs.cfg.Executions.SaveDelivery(ctx, ids[0], longrun.Delivery{EventID: "evt", Type: longrun.EventAborted, State: longrun.DeliveryFailed}); err != nil {
		t.Fatal(err)
	}
	if w := hs.do(t, "POST", "/executions/"+ids[0]+"/redeliver", hs.acme, ""); w.Code != 202 || !strings.Contains(w.Body.String(), `"state":"pending"`) {
		t.Fatalf("redeliver %d %s", w.Code, w.Body)
	}
}
