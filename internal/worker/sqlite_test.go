package worker

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/longrun/longrun/internal/sqlite"
	"github.com/longrun/longrun/jobs/noop"
)

// TestPollerOnSQLite runs the poller on the real SQLite queue, as `longrun
// dev` does, with more concurrency than one Receive may ask for.
func TestPollerOnSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longrun.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	q := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	const n = 25
	for i := range n {
		if err := q.Send(ctx, taskBody(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	h := setup(t, noop.Job)
	p := NewPoller(PollerConfig{Queue: q, Processor: h.p, Concurrency: 12, Wait: 50 * time.Millisecond, Visibility: time.Minute})
	cancel, done := run(p)
	eventually(t, "every task completed", func() bool { s, _, _ := h.rep.snapshot(); return len(s) == n })
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if msgs, err := q.Receive(ctx, 10, 0, time.Minute); err != nil || len(msgs) != 0 {
		t.Fatalf("left on the queue: %d messages, %v; all should be deleted", len(msgs), err)
	}
	if s, f, _ := h.rep.snapshot(); len(s) != n || len(f) != 0 {
		t.Fatalf("%d successes, %d failures", len(s), len(f))
	}
}
