package fakeclock_test

import (
	"slices"
	"testing"
	"time"

	"github.com/longrun/longrun/internal/fakeclock"
)

func fired(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestWaitsFireWhenDue(t *testing.T) {
	t.Parallel()
	c := fakeclock.New()
	past, _ := c.Until(fakeclock.Start)
	soon, _ := c.Until(fakeclock.Start.Add(time.Second))
	later, _ := c.Until(fakeclock.Start.Add(time.Minute))
	dropped, stop := c.Until(fakeclock.Start.Add(time.Second))
	stop()
	if p := c.Pending(); !slices.Equal(p, []time.Time{fakeclock.Start.Add(time.Second), fakeclock.Start.Add(time.Minute)}) {
		t.Fatalf("Pending = %v; want the two waits left, earliest first", p)
	}
	if !fired(past) || fired(soon) || c.Waits() != 2 {
		t.Fatalf("a wait for now fires at once, others wait: past %v soon %v, %d pending", fired(past), fired(soon), c.Waits())
	}
	c.Advance(time.Second)
	if !fired(soon) || fired(later) || fired(dropped) || !c.Now().Equal(fakeclock.Start.Add(time.Second)) {
		t.Fatalf("after 1 s: soon %v later %v dropped %v now %v", fired(soon), fired(later), fired(dropped), c.Now())
	}
	c.Set(fakeclock.Start.Add(time.Hour))
	if !fired(later) || c.Waits() != 0 || len(c.Pending()) != 0 {
		t.Fatalf("Set past every wait fires them all: later %v, %d pending", fired(later), c.Waits())
	}
}
