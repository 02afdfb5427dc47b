package dynamostore_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/dynamostore"
)

// A RUNNING record is start-pending from CreateExecution until
// ConfirmStarted; PendingStarts finds it only once it is
// older than the bound, and never returns more than the limit. Not on
// minidyn: it keeps an item in a sparse index after the item's index
// attributes are removed (docs/emulators.md).
func TestPendingStarts(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) *dynamostore.Store{
		"kumo": func(t *testing.T) *dynamostore.Store { s, _ := kumoStore(t); return s },
		"moto": func(t *testing.T) *dynamostore.Store { s, _ := motoStore(t); return s },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testPendingStarts(t, open(t))
		})
	}
}

func testPendingStarts(t *testing.T, s *dynamostore.Store) {
	ctx := context.Background()
	// Long ago, and a unique millisecond, so the shared tables' other
	// records (started now) are never older than the bounds used here.
	t0 := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(time.Now().UnixNano()%int64(time.Hour)) / time.Millisecond * time.Millisecond)
	mk := func(status longrun.Status, start time.Time) string {
		e := &longrun.Execution{ID: longrun.NewExecutionID(), Tenant: "pending-" + longrun.NewExecutionID(), Status: status,
			Input: json.RawMessage(`{}`), StartDate: start}
		if _, _, err := s.CreateExecution(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	a, b, c := mk(longrun.StatusRunning, t0), mk(longrun.StatusRunning, t0.Add(time.Millisecond)), mk(longrun.StatusRunning, t0.Add(2*time.Millisecond))
	done := mk(longrun.StatusSucceeded, t0) // not RUNNING: never pending
	pending := func(before time.Time, limit int) []string {
		t.Helper()
		ids, err := s.PendingStarts(ctx, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	mine := func(ids []string) []string {
		var out []string
		for _, id := range ids {
			if slices.Contains([]string{a, b, c, done}, id) {
				out = append(out, id)
			}
		}
		slices.Sort(out)
		return out
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }

	if got := mine(pending(t0, 100)); len(got) != 0 {
		t.Errorf("PendingStarts(before its start) = %v, want none of these", got)
	}
	if got, want := mine(pending(t0.Add(2*time.Millisecond), 100)), sorted(a, b); !slices.Equal(got, want) {
		t.Errorf("PendingStarts(t0+2ms) = %v, want %v", got, want)
	}
	if got := pending(t0.Add(time.Hour), 2); len(got) > 2 {
		t.Errorf("PendingStarts(limit 2) = %v, want at most 2", got)
	}
	if err := s.ConfirmStarted(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.FinishExecution(ctx, b, longrun.Outcome{Status: longrun.StatusAborted, StopDate: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	// Finishing leaves the marker (the sweep clears it once the webhook of a
	// start it failed is under way); confirming removes it.
	if got, want := mine(pending(t0.Add(time.Hour), 100)), sorted(b, c); !slices.Equal(got, want) {
		t.Errorf("PendingStarts after confirming one and finishing one = %v, want %v", got, want)
	}
	if err := s.ConfirmStarted(ctx, longrun.NewExecutionID()); err != nil {
		t.Errorf("ConfirmStarted(unknown) = %v, want nil", err)
	}
	// The record reads as before: the marker is not part of it.
	e, err := s.GetExecution(ctx, "", c)
	if err != nil || e.Status != longrun.StatusRunning {
		t.Errorf("GetExecution(pending) = %+v, %v", e, err)
	}
}
