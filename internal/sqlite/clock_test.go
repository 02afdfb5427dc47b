package sqlite_test

import (
	"sync"
	"time"
)

// fakeClock is a clock tests move by hand: Now for records and timeouts,
// Until for long polls. Advance fires every wait that has come due.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters map[*fakeWait]struct{}
}

type fakeWait struct {
	at   time.Time
	done chan struct{}
}

func newFakeClock() *fakeClock {
	return &fakeClock{
		now:     time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
		waiters: map[*fakeWait]struct{}{},
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Until(t time.Time) (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &fakeWait{at: t, done: make(chan struct{})}
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

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for w := range c.waiters {
		if !w.at.After(c.now) {
			close(w.done)
			delete(c.waiters, w)
		}
	}
}

// Waits returns how many waits are pending.
func (c *fakeClock) Waits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}
