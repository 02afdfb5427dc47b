// Package fakeclock is the clock tests move by hand: Now for records and
// deadlines, Until for waits, and Advance, which fires every wait that has
// come due. Time-dependent code takes a longrun.Clock, so its tests never
// sleep; *Clock is a longrun.Clock as it is, so one fake drives the engine,
// the queue and the worker together.
package fakeclock

import (
	"slices"
	"sync"
	"time"
)

// Start is where every fake clock begins.
var Start = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// Clock is a fake clock; safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters map[*wait]struct{}
}

type wait struct {
	at   time.Time
	done chan struct{}
}

// New returns a clock at Start.
func New() *Clock { return At(Start) }

// At returns a clock at t.
func At(t time.Time) *Clock { return &Clock{now: t, waiters: map[*wait]struct{}{}} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Until returns a channel closed once the clock reaches t (at once if it
// has), and a stop func that drops the wait.
func (c *Clock) Until(t time.Time) (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &wait{at: t, done: make(chan struct{})}
	if !t.After(c.now) {
		close(w.done)
		return w.done, func() {}
	}
	c.waiters[w] = struct{}{}
	return w.done, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.waiters, w)
	}
}

// Advance moves the clock by d and fires the waits that came due.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the clock to t and fires the waits that came due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	for w := range c.waiters {
		if !w.at.After(c.now) {
			close(w.done)
			delete(c.waiters, w)
		}
	}
}

// Pending returns when each pending wait comes due, earliest first: a test
// sees which waits the code under test holds (a limit, a tick, a backoff)
// and can step to the earliest with Set.
func (c *Clock) Pending() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	at := make([]time.Time, 0, len(c.waiters))
	for w := range c.waiters {
		at = append(at, w.at)
	}
	slices.SortFunc(at, time.Time.Compare)
	return at
}

// Waits returns how many waits are pending.
func (c *Clock) Waits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}
