package devapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
)

// A message held back for its tenant's share waits longer than its lease (a
// 1 s JobHeartbeatSeconds): it must still run once, never beside a copy of
// itself received again meanwhile, and the tenant never past its share.
func TestFairShareHoldsBackPastTheLease(t *testing.T) {
	t.Parallel()
	tpl := copyTemplate(t, func(b []byte) []byte {
		re := regexp.MustCompile(`(?m)(JobHeartbeatSeconds:\n(?:\s+\w+:.*\n)*?\s+Default:) \d+`)
		return re.ReplaceAll(b, []byte("$1 1"))
	})
	var (
		mu        sync.Mutex
		runs      = map[string]int{}
		cur, peak int
	)
	job := func(ctx context.Context, in json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
		mu.Lock()
		runs[string(in)]++
		cur++
		peak = max(peak, cur)
		mu.Unlock()
		defer func() { mu.Lock(); cur--; mu.Unlock() }()
		select {
		case <-time.After(1500 * time.Millisecond): // the job's own work
			return json.RawMessage(`{"ok":true}`), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	app, url := serve(t, devapp.Config{TemplatePath: tpl, Workers: 2, TenantWorkers: 1, Jobs: registryOf(job)})
	c := newClient(t, url, keyFor(t, app, "acme"))
	var ids []string
	for i := range 4 {
		code, body, _ := c.do(t, http.MethodPost, "/start-execution", map[string]any{"input": map[string]int{"n": i}})
		var out struct{ ExecutionID string }
		if err := json.Unmarshal(body, &out); err != nil || code != http.StatusAccepted {
			t.Fatalf("start %d: %d %s", i, code, body)
		}
		ids = append(ids, out.ExecutionID)
	}
	deadline := time.Now().Add(40 * time.Second)
	for _, id := range ids {
		for {
			e, err := app.Executions.GetExecution(context.Background(), "", id)
			if err != nil {
				t.Fatal(err)
			}
			if e.Status != longrun.StatusRunning {
				if e.Status != longrun.StatusSucceeded {
					t.Errorf("%s ended %s %s %s", id, e.Status, e.Error, e.Cause)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still RUNNING after 40 s", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range 4 {
		if n := runs[fmt.Sprintf(`{"n":%d}`, i)]; n != 1 {
			t.Errorf("job %d ran %d times, want once: %v", i, n, runs)
		}
	}
	if peak > 1 {
		t.Errorf("the tenant ran %d jobs at once, past its share of 1", peak)
	}
}
