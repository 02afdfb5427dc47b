package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
)

// confirmingStore is the fake store with a start-pending marker, as
// dynamostore has: ConfirmStarted records which ids were confirmed.
type confirmingStore struct {
	*executionStore
	mu        sync.Mutex
	confirmed []string
}

func (s *confirmingStore) ConfirmStarted(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.confirmed = append(s.confirmed, id)
	return nil
}

func (s *confirmingStore) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.confirmed)
}

// A start clears the record's start-pending marker only after
// StartExecution succeeded, and a replay that starts the execution again
// clears it too; a failed start leaves nothing to clear (its record is
// deleted).
func TestStartConfirmsOnlyAfterStartExecution(t *testing.T) {
	t.Parallel()
	var store *confirmingStore
	hs := setup(t, func(c *Config) {
		store = &confirmingStore{executionStore: c.Executions.(*executionStore)}
		c.Executions = store
	})

	id := hs.start(t, `{"input":{}}`)
	if got := store.ids(); !slices.Equal(got, []string{id}) {
		t.Fatalf("confirmed %v after a start, want [%s]", got, id)
	}

	hs.orch.setStartErr(errors.New("throttled"))
	if w := hs.do(t, "POST", "/start-execution", hs.acme, `{"input":{}}`); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("start with StartExecution failing: %d %s", w.Code, w.Body)
	}
	if got := store.ids(); len(got) != 1 {
		t.Fatalf("confirmed %v after a failed start, want only the first", got)
	}
	hs.orch.setStartErr(nil)

	// A replay of a RUNNING record (its first start may have been cut
	// short) starts it again and confirms it.
	w := hs.do(t, "POST", "/start-execution", hs.acme, `{"input":{"n":1}}`, "Idempotency-Key", "k1")
	if w.Code != http.StatusAccepted {
		t.Fatalf("start: %d %s", w.Code, w.Body)
	}
	w = hs.do(t, "POST", "/start-execution", hs.acme, `{"input":{"n":1}}`, "Idempotency-Key", "k1")
	if w.Code != http.StatusAccepted || w.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
	if got := store.ids(); len(got) != 3 || got[1] != got[2] {
		t.Errorf("confirmed %v after a start and its replay, want the replayed id twice", got)
	}
}
