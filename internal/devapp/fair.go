package devapp

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/sqlite"
)

// fairQueue is the jobs queue as the in-process worker sees it, with a
// per-tenant share of the workers: a message whose tenant already runs
// `share` jobs is given back (sqlite.Queue.Defer, not counted as a receive)
// for deferDelay, so one tenant's long jobs never hold every worker and
// other tenants' jobs run meanwhile (docs/local-engine.md, "Fair under
// load"). A tenant alone still gets up to `share` workers; the other workers
// stay free for the others.
type fairQueue struct {
	*sqlite.Queue
	store *sqlite.ExecutionStore
	share int
	now   longrun.Clock

	mu   sync.Mutex
	held map[string]*heldJob // by receipt
	runs map[string]int      // jobs held per tenant
}

type heldJob struct {
	tenant string
	until  time.Time // the visibility the worker last set; past it the worker is gone
}

// deferDelay is how long a message over its tenant's share waits before a
// worker looks at it again.
const deferDelay = time.Second

func newFairQueue(q *sqlite.Queue, store *sqlite.ExecutionStore, share int, now longrun.Clock) *fairQueue {
	return &fairQueue{Queue: q, store: store, share: share, now: now, held: map[string]*heldJob{}, runs: map[string]int{}}
}

func (f *fairQueue) Receive(ctx context.Context, max int, wait, visibility time.Duration) ([]longrun.Message, error) {
	msgs, err := f.Queue.Receive(ctx, max, wait, visibility)
	if err != nil || len(msgs) == 0 {
		return msgs, err
	}
	out := msgs[:0]
	for _, m := range msgs {
		tenant := f.tenantOf(ctx, m)
		if !f.take(tenant, m.Receipt, visibility) {
			// If it cannot be given back, the message comes back after its
			// visibility timeout, as any message a worker drops.
			_ = f.Defer(ctx, m.Receipt, deferDelay)
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// tenantOf is the tenant of the execution a task message is for; "" when it
// cannot tell (such a message is not held back).
func (f *fairQueue) tenantOf(ctx context.Context, m longrun.Message) string {
	var tm struct {
		ExecutionID string `json:"executionId"`
	}
	if json.Unmarshal([]byte(m.Body), &tm) != nil || tm.ExecutionID == "" {
		return ""
	}
	e, err := f.store.GetExecution(ctx, "", tm.ExecutionID)
	if err != nil {
		return ""
	}
	return e.Tenant
}

// take counts the message against its tenant's share, if there is room.
func (f *fairQueue) take(tenant, receipt string, visibility time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expire()
	if tenant != "" && f.runs[tenant] >= f.share {
		return false
	}
	f.held[receipt] = &heldJob{tenant: tenant, until: f.now().Add(visibility)}
	f.runs[tenant]++
	return true
}

// expire forgets jobs whose worker stopped extending their visibility
// without deleting or releasing the message (it comes back to the queue).
func (f *fairQueue) expire() {
	now := f.now()
	for r, h := range f.held {
		if now.After(h.until) {
			f.release(r)
		}
	}
}

func (f *fairQueue) release(receipt string) {
	if h, ok := f.held[receipt]; ok {
		delete(f.held, receipt)
		if f.runs[h.tenant]--; f.runs[h.tenant] <= 0 {
			delete(f.runs, h.tenant)
		}
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
		h.until = f.now().Add(visibility)
	}
	return err
}
