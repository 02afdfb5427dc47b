package worker

import (
	"time"

	longrun "github.com/longrun/longrun"
)

// ticker fires every d on a Clock, built on Until: Due is closed at the
// next tick, and Next, called once the holder has taken a tick, waits for
// the first tick still ahead, so ticks missed while the holder was busy are
// dropped, as a time.Ticker drops them.
type ticker struct {
	clock longrun.Clock
	every time.Duration
	next  time.Time
	due   <-chan struct{}
	stop  func()
}

// newTicker starts a ticker whose first tick is d from now.
func newTicker(clock longrun.Clock, d time.Duration) *ticker {
	t := &ticker{clock: clock, every: max(d, time.Millisecond), next: clock.Now()}
	t.Next()
	return t
}

// Due is closed at the tick the ticker waits for.
func (t *ticker) Due() <-chan struct{} { return t.due }

// Next waits for the first tick after now.
func (t *ticker) Next() {
	if now := t.clock.Now(); !t.next.After(now) {
		t.next = t.next.Add((now.Sub(t.next)/t.every + 1) * t.every)
	}
	t.due, t.stop = t.clock.Until(t.next)
}

// Stop releases the pending wait.
func (t *ticker) Stop() { t.stop() }
