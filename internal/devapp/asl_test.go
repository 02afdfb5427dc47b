package devapp_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
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
	ctx := t.Context()
	app, url := serve(t, devapp.Config{TemplatePath: tpl, Jobs: registryOf(noop.Job), Workers: 2})
	id := newClient(t, url, keyFor(t, app, "acme")).startInput(t, map[string]any{"parts": []int{1, 2, 3}})
	var e *longrun.Execution
	deadline := time.Now().Add(20 * time.Second)
	for {
		if e, err = app.Executions.GetExecution(ctx, "acme", id); err != nil {
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
}
