package devapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/tenant"
	"github.com/longrun/longrun/jobs/noop"
)

// TestFanoutMachineEndToEnd runs a longrun machine that puts the worker's
// task inside a Parallel, sets and reads variables, maps over the job's
// output and reshapes it in a JSONata state, through the real local app: API, engine, SQLite queue, worker,
// notify. testdata/fanout.asl.json replaces statemachine/longrun.asl.json
// in a copy of the template.
func TestFanoutMachineEndToEnd(t *testing.T) {
	t.Parallel()
	tpl := copyTemplate(t, orSame(nil))
	def, err := os.ReadFile(filepath.Join("testdata", "fanout.asl.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(tpl), "statemachine", "longrun.asl.json"), def, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	app, err := devapp.Open(ctx, devapp.Config{DataDir: t.TempDir(), TemplatePath: tpl, Jobs: registryOf(noop.Job), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	key, err := tenant.CreateKey(ctx, app.Tenants, "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ln.Addr().String()+"/start-execution", strings.NewReader(`{"input":{"parts":[1,2,3]}}`))
	req.Header.Set("Authorization", "Bearer "+key.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var started struct{ ExecutionID string }
	err = json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()
	if err != nil || resp.StatusCode >= 300 || started.ExecutionID == "" {
		t.Fatalf("start-execution: %d %v", resp.StatusCode, err)
	}
	id := started.ExecutionID
	var e *longrun.Execution
	deadline := time.Now().Add(20 * time.Second)
	for {
		if e, err = app.Executions.GetExecution(ctx, key.Tenant, id); err != nil {
			t.Fatal(err)
		}
		if e.Status.Terminal() || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if e.Status != longrun.StatusSucceeded {
		t.Fatalf("execution %s: %s %s %s", id, e.Status, e.Error, e.Cause)
	}
	var out []struct {
		I      int    `json:"i"`
		Scaled int    `json:"scaled"`
		Tag    string `json:"tag"`
		Label  string `json:"label"`
	}
	if err := json.Unmarshal(e.Output, &out); err != nil || len(out) != 3 {
		t.Fatalf("output %s: %v", e.Output, err)
	}
	for i, o := range out {
		if o.I != i || o.Scaled != 2*(i+1) || o.Tag != id || o.Label != fmt.Sprint("item-", i) {
			t.Errorf("item %d: %+v, want index %d, scaled %d, tag %s (the variable set before the Map), label item-%d (JSONata)", i, o, i, 2*(i+1), id, i)
		}
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
