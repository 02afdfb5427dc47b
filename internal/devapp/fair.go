package devapp

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/jsonscan"
	"github.com/longrun/longrun/internal/sqlite"
)

// fairQueue is the jobs queue as the in-process worker sees it, with a
// per-tenant share of the workers: a message whose tenant already runs
// `share` jobs waits, in memory, until one of that tenant's jobs ends (it is
// then handed to the next free worker at once), so one tenant's long jobs
// never hold every worker and other tenants' jobs run meanwhile
// (docs/local-engine.md, "Fair under load"). A message that waits longer
// than maxHoldBack is given back to the queue (sqlite.Queue.Defer, which does
// not count the receive), well within its visibility timeout.
type fairQueue struct {
	*sqlite.Queue
	store *sqlite.ExecutionStore
	share int
	clock longrun.Clock

	mu      sync.Mutex
	held    map[string]*heldJob // by receipt
	expires time.Time           // no held job's visibility lapses before this (zero: none held)
	runs    map[string]int      // jobs held per tenant
	waiting []waitingMsg        // over their tenant's share, oldest first
	wake    chan struct{}       // closed when a held job ends
}

type heldJob struct {
	tenant string
	until  time.Time // the visibility the worker last set; past it the worker is gone
}

type waitingMsg struct {
	m          longrun.Message
	tenant     string
	visibility time.Duration
	since      time.Time
}

// maxHoldBack is how long a message over its tenant's share waits in memory
// before it goes back to the queue; deferDelay how long it is invisible then.
const (
	maxHoldBack = 10 * time.Second
	deferDelay  = time.Second
)

func newFairQueue(q *sqlite.Queue, store *sqlite.ExecutionStore, share int, clock longrun.Clock) *fairQueue {
	return &fairQueue{Queue: q, store: store, share: share, clock: clock,
		held: map[string]*heldJob{}, runs: map[string]int{}, wake: make(chan struct{})}
}

func (f *fairQueue) Receive(ctx context.Context, max int, wait, visibility time.Duration) ([]longrun.Message, error) {
	if out := f.fromWaiting(ctx, max); len(out) > 0 {
		return out, nil
	}
	// A long poll, cut short when a held job ends: a waiting message may
	// then be handed out.
	f.mu.Lock()
	wake, waiting := f.wake, len(f.waiting) > 0
	f.mu.Unlock()
	poll := ctx
	if waiting {
		var cancel context.CancelFunc
		poll, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-wake:
				cancel()
			case <-poll.Done():
			}
		}()
	}
	msgs, err := f.Queue.Receive(poll, max, wait, visibility)
	if err != nil {
		if ctx.Err() == nil && poll.Err() != nil {
			return f.fromWaiting(ctx, max), nil // woken
		}
		return nil, err
	}
	out := msgs[:0]
	for _, m := range msgs {
		tenant := f.tenantOf(ctx, m)
		f.mu.Lock()
		if f.take(tenant, m.Receipt, f.clock.Now().Add(visibility)) {
			out = append(out, m)
		} else {
			f.waiting = append(f.waiting, waitingMsg{m: m, tenant: tenant, visibility: visibility, since: f.clock.Now()})
		}
		f.mu.Unlock()
	}
	return out, nil
}

// fromWaiting hands out up to max waiting messages whose tenant is under its
// share now, and gives back to the queue those that waited too long.
//
// A held message's visibility runs on while it waits, so a message handed
// out after a third of it has its visibility renewed first: if that fails,
// the message came back to the queue meanwhile (it may run elsewhere under
// a new receipt) and this copy is dropped, so a job never runs twice for
// having waited.
func (f *fairQueue) fromWaiting(ctx context.Context, max int) []longrun.Message {
	var handed []waitingMsg
	var expired []string
	f.mu.Lock()
	now := f.clock.Now()
	kept := f.waiting[:0]
	for _, w := range f.waiting {
		switch {
		case len(handed) < max && f.take(w.tenant, w.m.Receipt, w.since.Add(w.visibility)):
			handed = append(handed, w)
		case now.Sub(w.since) > min(maxHoldBack, w.visibility/2):
			expired = append(expired, w.m.Receipt)
		default:
			kept = append(kept, w)
		}
	}
	clear(f.waiting[len(kept):])
	f.waiting = kept
	f.mu.Unlock()
	for _, r := range expired {
		// If it cannot be given back, the message comes back after its
		// visibility timeout, as any message a worker drops.
		_ = f.Defer(ctx, r, deferDelay)
	}
	out := make([]longrun.Message, 0, len(handed))
	for _, w := range handed {
		if now.Sub(w.since) < w.visibility/3 {
			// Still invisible for two thirds of its visibility (the queue's
			// visible_at: no other receive can take it meanwhile), and the
			// worker renews it a third of the way in. Renewing it here would
			// be one more write per job. take held it until its visibility
			// as received.
			out = append(out, w.m)
			continue
		}
		if f.ChangeVisibility(ctx, w.m.Receipt, w.visibility) == nil { // on failure it releases the share
			out = append(out, w.m)
		}
	}
	return out
}

// tenantOf is the tenant of the execution a task message is for; "" when it
// cannot tell (such a message is not held back).
func (f *fairQueue) tenantOf(ctx context.Context, m longrun.Message) string {
	// Scanned, not decoded: the message carries the job's input, which
	// only the worker needs.
	raw, _, err := jsonscan.Field([]byte(m.Body), "executionId")
	var id string
	if err != nil || raw == nil || json.Unmarshal(raw, &id) != nil || id == "" {
		return ""
	}
	tenant, err := f.store.TenantOf(ctx, id)
	if err != nil {
		return ""
	}
	return tenant
}

// take counts the message against its tenant's share, if there is room.
// f.mu is held.
// until is when the message's visibility lapses as the queue has it: the
// one place both the held job's deadline and f.expires are set from.
func (f *fairQueue) take(tenant, receipt string, until time.Time) bool {
	f.expire(f.clock.Now())
	if tenant != "" && f.runs[tenant] >= f.share {
		return false
	}
	f.held[receipt] = &heldJob{tenant: tenant, until: until}
	if f.expires.IsZero() || until.Before(f.expires) {
		f.expires = until
	}
	f.runs[tenant]++
	return true
}

// expire forgets jobs whose worker stopped extending their visibility
// without deleting or releasing the message (it comes back to the queue).
// It looks at the held jobs only once the earliest visibility may have
// lapsed: take runs for every waiting message on every receive, and a scan
// each time was a quarter of longrun dev's CPU in BenchmarkEndToEnd.
// (expires may be earlier than any held job's visibility, after a renewal
// or a release: that costs one scan, which moves it on.)
func (f *fairQueue) expire(now time.Time) {
	if f.expires.IsZero() || !now.After(f.expires) {
		return
	}
	f.expires = time.Time{}
	for r, h := range f.held {
		switch {
		case now.After(h.until):
			f.release(r)
		case f.expires.IsZero() || h.until.Before(f.expires):
			f.expires = h.until
		}
	}
}

func (f *fairQueue) release(receipt string) {
	if h, ok := f.held[receipt]; ok {
		delete(f.held, receipt)
		if f.runs[h.tenant]--; f.runs[h.tenant] <= 0 {
			delete(f.runs, h.tenant)
		}
		close(f.wake)
		f.wake = make(chan struct{})
	}
}

func (f *fairQueue) Delete(ctx context.Context, receipt string) error {
	err := f.Queue.Delete(ctx, receipt)
	f.mu.Lock()
	f.release(receipt)
	f.mu.Unlock()
	return err
}

func (f *fairQueue) ChangeVisibility(ctx context.Context, receipt string, visibility time.Duration) error {
	err := f.Queue.ChangeVisibility(ctx, receipt, visibility)
	f.mu.Lock()
	defer f.mu.Unlock()
	if visibility == 0 || err != nil {
		f.release(receipt) // given back, or no longer this worker's
	} else if h, ok := f.held[receipt]; ok {
		h.until = f.clock.Now().Add(visibility)
	}
	return err
}
