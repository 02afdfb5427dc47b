package worker

import (
	"time"

	longrun "github.com/longrun/longrun"
)

// Clock is the time the worker runs on: Now, and a longrun.Timer to wait
// with, the shape every time-dependent part of longrun takes. Production
// uses SystemClock; `longrun dev` passes its database's clock (ClockOf), so
// in its tests one internal/fakeclock drives the engine, the queue and the
// worker, and heartbeats, lease renewals, progress flushes, job limits,
// backoffs and drains are tested without waiting. *fakeclock.Clock is a
// Clock as it is.
type Clock interface {
	Now() time.Time
	longrun.Timer
}

// SystemClock is the real clock.
type SystemClock struct{ longrun.SystemTimer }

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// ClockOf is the Clock of a time source and a Timer that agrees with it,
// such as a sqlite.DB's Now and Timer.
func ClockOf(now longrun.Clock, timer longrun.Timer) Clock { return clockOf{now: now, Timer: timer} }

type clockOf struct {
	now longrun.Clock
	longrun.Timer
}

func (c clockOf) Now() time.Time { return c.now() }

// ticker fires every d on a Clock, built on Until: Due is closed at the
// next tick, and Next, called once the holder has taken a tick, waits for
// the first tick still ahead, so ticks missed while the holder was busy are
// dropped, as a time.Ticker drops them.
type ticker struct {
	clock Clock
	every time.Duration
	next  time.Time
	due   <-chan struct{}
	stop  func()
}

// newTicker starts a ticker whose first tick is d from now.
func newTicker(clock Clock, d time.Duration) *ticker {
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
