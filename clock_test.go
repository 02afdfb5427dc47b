package longrun_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/fakeclock"
)

func TestSleepUntil(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	slept := make(chan error, 1)
	go func() { slept <- longrun.SleepUntil(context.Background(), clock, clock.Now().Add(time.Minute)) }()
	for clock.Waits() == 0 { // the sleep's wait, taken in its goroutine
		time.Sleep(time.Millisecond)
	}
	clock.Advance(time.Minute - time.Nanosecond)
	select {
	case err := <-slept:
		t.Fatalf("SleepUntil returned %v before its time", err)
	default:
	}
	clock.Advance(time.Nanosecond)
	if err := <-slept; err != nil {
		t.Fatalf("SleepUntil = %v once the time came, want nil", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := longrun.SleepUntil(ctx, clock, clock.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Fatalf("SleepUntil on an ended context = %v, want context.Canceled", err)
	}
	if n := clock.Waits(); n != 0 {
		t.Fatalf("%d waits left pending: an interrupted sleep must release its wait", n)
	}
}

// The fake clock tests use is a Clock as it is.
var _ longrun.Clock = (*fakeclock.Clock)(nil)

func TestSystemClock(t *testing.T) {
	t.Parallel()
	var clock longrun.Clock = longrun.SystemClock{}
	before := time.Now()
	if now := clock.Now(); now.Before(before) || now.After(time.Now()) {
		t.Fatalf("SystemClock.Now() = %v, not between the time.Now() taken around it", now)
	}
	past, _ := clock.Until(time.Now().Add(-time.Second))
	select {
	case <-past:
	case <-time.After(5 * time.Second):
		t.Fatal("a wait for a time gone by did not fire")
	}
	later, stop := clock.Until(time.Now().Add(time.Hour))
	stop()
	select {
	case <-later:
		t.Fatal("a wait an hour ahead fired")
	default:
	}
}
