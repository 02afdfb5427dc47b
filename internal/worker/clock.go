package worker

import (
	"context"
	"time"
)

// Clock is the time the worker runs on: real time in production, a fake one in
// tests so heartbeats, progress flushes, visibility extensions and drains are
// tested without waiting.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
	After(d time.Duration) <-chan time.Time
}

// Ticker is the part of *time.Ticker the worker uses.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTicker returns a time.Ticker.
func (SystemClock) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

type systemTicker struct{ t *time.Ticker }

func (t systemTicker) C() <-chan time.Time { return t.t.C }
func (t systemTicker) Stop()               { t.t.Stop() }

// sleepOn waits d on clock, or until ctx ends.
func sleepOn(clock Clock) func(context.Context, time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		select {
		case <-clock.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
