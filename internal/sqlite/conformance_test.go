package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/longrun/longrun/internal/queuetest"
	"github.com/longrun/longrun/internal/sqlite"
	"github.com/longrun/longrun/internal/storetest"
)

// setup opens a fresh database in t.TempDir() on a fake clock.
func setup(t *testing.T) (*sqlite.DB, *fakeClock) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "longrun.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	clock := newFakeClock()
	db.Clock = clock
	return db, clock
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		db, clock := setup(t)
		return storetest.Harness{
			Executions: sqlite.NewExecutionStore(db),
			Tenants:    sqlite.NewTenantStore(db),
			Clock:      clock,
		}
	})
}

func TestQueueConformance(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T, cfg queuetest.Config) queuetest.Harness {
		db, clock := setup(t)
		h := queuetest.Harness{Advance: clock.Advance, Waits: clock.Waits}
		qc := sqlite.QueueConfig{}
		if cfg.MaxReceiveCount > 0 {
			qc = sqlite.QueueConfig{MaxReceiveCount: cfg.MaxReceiveCount, DeadLetter: "jobs-dlq"}
			h.DeadLetter = sqlite.NewQueue(db, "jobs-dlq", sqlite.QueueConfig{})
		}
		h.Queue = sqlite.NewQueue(db, "jobs", qc)
		return h
	})
}

// TestQueueConformanceRealTime runs the suite as an SQS emulator would, on
// real time without Advance, so the real-time half of the suite is proven
// to stand on its own.
func TestQueueConformanceRealTime(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T, cfg queuetest.Config) queuetest.Harness {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "longrun.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		var h queuetest.Harness
		qc := sqlite.QueueConfig{}
		if cfg.MaxReceiveCount > 0 {
			qc = sqlite.QueueConfig{MaxReceiveCount: cfg.MaxReceiveCount, DeadLetter: "jobs-dlq"}
			h.DeadLetter = sqlite.NewQueue(db, "jobs-dlq", sqlite.QueueConfig{})
		}
		h.Queue = sqlite.NewQueue(db, "jobs", qc)
		return h
	})
}
