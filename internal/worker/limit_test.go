package worker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	longrun "github.com/longrun/longrun"
)

// limited is message with the job limit of seconds, as the Work state copies
// it from the state input.
func limited(input string, seconds int) longrun.TaskMessage {
	m := message(input)
	m.Limits = &longrun.Limits{TimeoutSeconds: seconds, HeartbeatSeconds: 60}
	return m
}

func TestJobLimitCountsFromReceipt(t *testing.T) {
	t.Parallel()
	h := setup(t, blockingJob(nil, nil))
	// The message waited in the queue for ten times the limit: that must
	// not count. The clock the limit runs on starts at receipt.
	h.clock.advance(300 * time.Second)
	done := make(chan error, 1)
	go func() { done <- h.p.Process(context.Background(), limited(`{}`, 30)) }()

	eventually(t, "the limit's timer", func() bool { _, n := h.clock.active(); return n == 1 })
	h.clock.advance(29 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("the job ended %v before its limit", err)
	case <-time.After(20 * time.Millisecond):
	}
	h.clock.advance(time.Second)
	if err := wait(t, done); err != nil {
		t.Fatalf("Process: %v", err)
	}
	successes, failures, _ := h.rep.snapshot()
	if len(successes) != 0 || len(failures) != 1 || failures[0].name != longrun.ErrNameJobTimeout ||
		!strings.Contains(failures[0].cause, "30s") || !strings.Contains(failures[0].cause, "queue does not count") {
		t.Fatalf("successes %v failures %+v, want one %s naming the 30s limit", successes, failures, longrun.ErrNameJobTimeout)
	}
}

func TestJobWithinItsLimitSucceeds(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h := setup(t, blockingJob(release, nil))
	done := make(chan error, 1)
	go func() { done <- h.p.Process(context.Background(), limited(`{}`, 30)) }()
	eventually(t, "the limit's timer", func() bool { _, n := h.clock.active(); return n == 1 })
	h.clock.advance(29 * time.Second)
	close(release)
	if err := wait(t, done); err != nil {
		t.Fatalf("Process: %v", err)
	}
	successes, failures, _ := h.rep.snapshot()
	if len(successes) != 1 || len(failures) != 0 {
		t.Fatalf("successes %v failures %v, want one success", successes, failures)
	}
}

func TestJobLimitCoversRetries(t *testing.T) {
	t.Parallel()
	runs := 0
	job := func(ctx context.Context, _ []byte) error {
		runs++
		if runs < 3 {
			return context.DeadlineExceeded // fails: retried
		}
		<-ctx.Done() // the third run outlives the limit
		return ctx.Err()
	}
	h := setup(t, func(ctx context.Context, in json.RawMessage, report func(longrun.Progress)) (json.RawMessage, error) {
		return nil, job(ctx, in)
	}, func(c *Config) {
		c.Jobs = longrun.NewRegistry()
		c.Jobs.Handle("ramen", func(ctx context.Context, in json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
			return nil, job(ctx, in)
		}, longrun.JobOptions{Retry: longrun.RetryPolicy{MaxAttempts: 5}})
	})
	done := make(chan error, 1)
	go func() { done <- h.p.Process(context.Background(), limited(`{}`, 30)) }()
	eventually(t, "the third run", func() bool { _, n := h.clock.active(); return n == 1 && len(h.slept()) == 2 })
	h.clock.advance(30 * time.Second)
	if err := wait(t, done); err != nil {
		t.Fatalf("Process: %v", err)
	}
	if _, failures, _ := h.rep.snapshot(); len(failures) != 1 || failures[0].name != longrun.ErrNameJobTimeout {
		t.Fatalf("failures %+v, want %s after the retries", failures, longrun.ErrNameJobTimeout)
	}
}

func TestNoLimitWithoutLimits(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h := setup(t, blockingJob(release, nil))
	done := make(chan error, 1)
	go func() { done <- h.p.Process(context.Background(), message(`{}`)) }()
	eventually(t, "heartbeat and progress tickers", func() bool { n, _ := h.clock.active(); return n == 2 })
	if _, timers := h.clock.active(); timers != 0 {
		t.Fatalf("%d timers for a message without limits (an older definition's): want none", timers)
	}
	close(release)
	if err := wait(t, done); err != nil {
		t.Fatalf("Process: %v", err)
	}
}
