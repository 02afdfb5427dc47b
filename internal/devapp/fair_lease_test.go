package devapp_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	tpl := templateWithHeartbeat(t, 1)
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
		ids = append(ids, c.startInput(t, map[string]int{"n": i}))
	}
	waitSucceeded(t, app, ids, 40*time.Second)
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
