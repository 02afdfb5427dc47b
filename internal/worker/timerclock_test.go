package worker_test

import (
	"sync"
	"time"

	"github.com/longrun/longrun/internal/worker"
)

// timer is the wait of a clock that is not the system's: the shape of
// sqlite.Timer and local.Timer, so the worker runs on the fake clock the
// local engine and queue run on in engine_test.go.
type timer interface {
	Until(t time.Time) (done <-chan struct{}, stop func())
}

// timerClock is a Clock made of a time source and a Timer on it.
type timerClock struct {
	Time  func() time.Time
	Timer timer
}

// Now returns c.Time().
func (c timerClock) Now() time.Time { return c.Time() }

// After sends the time on the returned channel once d has passed on c.
func (c timerClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	done, _ := c.Timer.Until(c.Time().Add(d))
	go func() { <-done; ch <- c.Time() }()
	return ch
}

// NewTicker ticks every d on c until stopped; like time.Ticker it drops
// ticks its reader has not taken.
func (c timerClock) NewTicker(d time.Duration) worker.Ticker {
	t := &timerTicker{c: make(chan time.Time, 1), stop: make(chan struct{})}
	go func() {
		for next := c.Time().Add(d); ; next = next.Add(d) {
			done, release := c.Timer.Until(next)
			select {
			case <-done:
				select {
				case t.c <- next:
				default:
				}
			case <-t.stop:
				release()
				return
			}
		}
	}()
	return t
}

type timerTicker struct {
	c    chan time.Time
	stop chan struct{}
	once sync.Once
}

func (t *timerTicker) C() <-chan time.Time { return t.c }
func (t *timerTicker) Stop()               { t.once.Do(func() { close(t.stop) }) }
