package devapp

import (
	"testing"
	"time"

	"github.com/longrun/longrun/internal/fakeclock"
)

// A job whose worker vanished stops counting against its tenant's share once
// its visibility lapses, and not before, however the held jobs' deadlines
// moved (a renewal, a release) since the last look.
func TestFairShareForgetsLapsedJobs(t *testing.T) {
	t.Parallel()
	clock := fakeclock.At(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := newFairQueue(nil, nil, 1, clock)
	take := func(tenant, receipt string) bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.take(tenant, receipt, f.clock.Now().Add(10*time.Second))
	}
	if !take("a", "r1") {
		t.Fatal("first job of tenant a held back with a share of 1")
	}
	if take("a", "r2") {
		t.Fatal("second job of tenant a handed out over its share of 1")
	}
	if !take("b", "r3") {
		t.Fatal("tenant b held back by tenant a's share")
	}
	// r1's worker renews at 8 s (as ChangeVisibility does): still held at 11 s.
	clock.Advance(8 * time.Second)
	f.mu.Lock()
	f.held["r1"].until = clock.Now().Add(10 * time.Second)
	f.mu.Unlock()
	clock.Advance(3 * time.Second)
	if take("a", "r2") {
		t.Fatal("a renewed job was forgotten at its first visibility's end")
	}
	if _, ok := f.held["r3"]; ok {
		t.Error("r3's visibility lapsed at 10 s, but it is still held at 11 s")
	}
	// r1 lapses at 18 s: then tenant a has room again.
	clock.Advance(7*time.Second + time.Millisecond)
	if !take("a", "r2") {
		t.Fatal("tenant a still at its share after its only job's visibility lapsed")
	}
	if len(f.held) != 1 || f.runs["a"] != 1 || f.runs["b"] != 0 {
		t.Errorf("held %v, runs %v; want only r2 held, for tenant a", f.held, f.runs)
	}
}

// A message handed out from the waiting list is held until its visibility as
// it was received, earlier than a fresh receive's: the share frees at that
// deadline, not a later one (f.expires follows the earliest held deadline).
func TestFairShareHeldUntilItsOwnVisibility(t *testing.T) {
	t.Parallel()
	clock := fakeclock.At(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := newFairQueue(nil, nil, 1, clock)
	f.mu.Lock()
	defer f.mu.Unlock()
	start := clock.Now()
	if !f.take("a", "fresh", start.Add(time.Minute)) || !f.take("b", "waited", start.Add(10*time.Second)) {
		t.Fatal("a first job of each tenant was held back")
	}
	clock.Advance(11 * time.Second)
	if !f.take("b", "next", clock.Now().Add(time.Minute)) {
		t.Errorf("tenant b still at its share 1 s after its job's visibility lapsed (held %v)", f.held)
	}
	if f.take("a", "more", clock.Now().Add(time.Minute)) {
		t.Error("tenant a's job, visible for another 49 s, was forgotten")
	}
}
