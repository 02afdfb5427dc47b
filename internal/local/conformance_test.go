package local

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/asl"
	"github.com/longrun/longrun/internal/sqlite"
)

// engineCase is the part of internal/asl's conformance cases
// (../asl/testdata/conformance) the engine can be checked against.
type engineCase struct {
	Name       string          `json:"name"`
	Definition json.RawMessage `json:"definition"`
	Input      json.RawMessage `json:"input"`
	Mock       json.RawMessage `json:"mock"`
	Start      string          `json:"start"`
	Sleeps     []string        `json:"sleeps"`
	Status     string          `json:"status"`
	Output     json.RawMessage `json:"output"`
	Error      string          `json:"error"`
	Cause      string          `json:"cause"`
}

// TestConformanceOnTheEngine runs every case of internal/asl's conformance
// tables that needs no task and no clock (Pass, Choice, Succeed, Fail,
// Parallel and Map states, in JSONPath and JSONata, with variables) on the
// durable engine, and checks it ends as asl.Run does: same status, output,
// error and cause. So what `asl run` shows is what `longrun dev` does,
// branches and iterations included.
func TestConformanceOnTheEngine(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "asl", "testdata", "conformance", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance tables: %v", err)
	}
	var cases []engineCase
	var machines []Machine
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cs []engineCase
		if err := json.Unmarshal(data, &cs); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, c := range cs {
			def := string(c.Definition)
			if len(c.Definition) == 0 || len(c.Mock) > 0 || c.Start != "" || len(c.Sleeps) > 0 ||
				strings.Contains(def, `"Task"`) || strings.Contains(def, `"Wait"`) ||
				strings.Contains(def, "$random") || strings.Contains(def, "$uuid") || strings.Contains(def, "States.UUID") || strings.Contains(def, "States.MathRandom") {
				continue
			}
			name := fmt.Sprintf("case%03d", len(cases))
			c.Name = strings.TrimSuffix(filepath.Base(file), ".json") + "/" + c.Name
			cases = append(cases, c)
			machines = append(machines, Machine{Name: name, ARN: testRegionARN + name, Definition: c.Definition})
		}
	}
	if len(cases) < 50 {
		t.Fatalf("only %d cases run without tasks or waits", len(cases))
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longrun.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, err := New(ctx, Config{DB: db, Clock: db.Clock, Machines: machines})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ended := map[string]bool{}
	all := make(chan struct{})
	e.onFinish = func(arn string, _ longrun.Status) {
		mu.Lock()
		defer mu.Unlock()
		ended[arn] = true
		if len(ended) == len(cases) {
			close(all)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = e.Run(ctx) })

	arns := make([]string, len(cases))
	for i, c := range cases {
		in := c.Input
		if len(in) == 0 {
			in = json.RawMessage(`{}`)
		}
		if arns[i], err = e.Start(ctx, machines[i].Name, "exec-1", in); err != nil {
			t.Fatalf("%s: start: %v", c.Name, err)
		}
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatalf("only %d of %d cases ended", len(ended), len(cases))
	}
	for i, c := range cases {
		d, err := e.Describe(ctx, arns[i])
		if err != nil {
			t.Fatal(err)
		}
		want := c.Status
		if want == "" {
			want = asl.StatusSucceeded
		}
		if string(d.Status) != want {
			t.Errorf("%s: status %s (%s: %s), want %s", c.Name, d.Status, d.Error, d.Cause, want)
			continue
		}
		if d.Error != c.Error {
			t.Errorf("%s: error %q, want %q", c.Name, d.Error, c.Error)
		}
		if c.Cause != "" && d.Cause != c.Cause {
			t.Errorf("%s: cause %q, want %q", c.Name, d.Cause, c.Cause)
		}
		if c.Output != nil && !sameJSON(d.Output, c.Output) {
			t.Errorf("%s: output %s, want %s", c.Name, d.Output, c.Output)
		}
	}
	t.Logf("%d conformance cases ran on the engine", len(cases))
}

// sameJSON compares JSON by value (key order and number spelling aside).
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
