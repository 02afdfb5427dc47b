package devapp

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/fakeclock"
	"github.com/longrun/longrun/internal/sqlite"
)

// TestFairHandOutRenewsOnlyAfterAThird: a message held back for its
// tenant's share is handed out without a write while two thirds of its
// visibility remain (nothing else can hold it), and renewed first once it
// has waited longer.
func TestFairHandOutRenewsOnlyAfterAThird(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		waited time.Duration
		renews bool
	}{
		{"soon", 10 * time.Second, false},
		{"after a third", 25 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := fakeclock.New()
			db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longrun.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			db.Clock = clock
			store := sqlite.NewExecutionStore(db)
			q := sqlite.NewQueue(db, JobsQueue, sqlite.QueueConfig{})
			for range 2 {
				id := longrun.NewExecutionID()
				if _, _, err := store.CreateExecution(ctx, &longrun.Execution{ID: id, ARN: "arn:" + id, Tenant: "acme",
					Status: longrun.StatusRunning, Input: json.RawMessage(`{}`), StartDate: clock.Now()}); err != nil {
					t.Fatal(err)
				}
				if err := q.Send(ctx, `{"executionId":"`+id+`"}`); err != nil {
					t.Fatal(err)
				}
			}
			f := newFairQueue(q, store, 1, clock)
			const visibility = time.Minute
			first, err := f.Receive(ctx, 10, 0, visibility)
			if err != nil || len(first) != 1 {
				t.Fatalf("Receive: %d messages, %v; want 1 (the other waits for the share)", len(first), err)
			}
			clock.Advance(tc.waited)
			db.ProfileWrites()
			if err := f.Delete(ctx, first[0].Receipt); err != nil {
				t.Fatal(err)
			}
			second, err := f.Receive(ctx, 10, 0, visibility)
			if err != nil || len(second) != 1 {
				t.Fatalf("Receive after the first ended: %d messages, %v; want the waiting one", len(second), err)
			}
			renewed := false
			for _, c := range db.WriteProfile().Callers {
				renewed = renewed || strings.Contains(c.Name, "ChangeVisibility")
			}
			if renewed != tc.renews {
				t.Errorf("renewed the lease: %v, want %v", renewed, tc.renews)
			}
			// Either way the message stays invisible (it is held).
			if again, err := q.Receive(ctx, 10, 0, visibility); err != nil || len(again) != 0 {
				t.Errorf("the handed-out message is visible again: %d, %v", len(again), err)
			}
		})
	}
}
