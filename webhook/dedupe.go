package webhook

import (
	"sync"
	"time"
)

// Deduper remembers webhook-ids for a window so a receiver processes each
// event once although delivery is at-least-once. It is in memory: a receiver
// running several replicas should keep ids in its database instead (a unique
// key on webhook-id), with the same logic.
type Deduper struct {
	window time.Duration

	mu   sync.Mutex
	seen map[string]time.Time // id → when first seen
	last time.Time            // last sweep, so forgetting costs O(n) at most once per window
}

// NewDeduper returns a Deduper that remembers ids for window. Make window at
// least as long as the sender retries (longrun: a little over a day), or
// accept that a late retry is processed twice.
func NewDeduper(window time.Duration) *Deduper {
	return &Deduper{window: window, seen: make(map[string]time.Time)}
}

// Seen records id and reports whether it was already recorded within the
// window before now. Call it after verifying the signature, never before:
// otherwise a forged request could block the real one.
func (d *Deduper) Seen(id string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.last) >= d.window {
		for k, at := range d.seen {
			if now.Sub(at) >= d.window {
				delete(d.seen, k)
			}
		}
		d.last = now
	}
	if at, ok := d.seen[id]; ok && now.Sub(at) < d.window {
		return true
	}
	d.seen[id] = now
	return false
}

// Forget drops id, for a receiver whose processing failed and that wants the
// sender's retry to be processed.
func (d *Deduper) Forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.seen, id)
}
