package worker

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/fakeclock"
)

// limited is message with the job limit of seconds, as the Work state copies
// it from the state input.
func limited(input string, seconds int) longrun.TaskMessage {
	m := message(input)
	m.Limits = &longrun.Limits{TimeoutSeconds: seconds, HeartbeatSeconds: 60}
	return m
}

// pending is whether a wait is pending on h's clock at at.
func pending(h *harness, at time.Time) func() bool {
	return func() bool { return slices.Contains(h.clock.Pending(), at) }
}

func TestJobLimitCountsFromReceipt(t *testing.T) {
	t.Parallel()
	h := setup(t, blockingJob(nil, nil))
	// The message waited in the queue for ten times the limit: that must
	// not count. The clock the limit runs on starts at receipt.
	h.clock.Advance(300 * time.Second)
	receipt := h.clock.Now()
	done := make(chan error, 1)
	go func() { done <- h.p.Process(context.Background(), limited(`{}`, 30)) }()

	eventually(t, "the limit's timer", pending(h, receipt.Add(30*time.Second)))
	h.clock.Advance(29 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("the job ended %v before its limit", err)
	case <-time.After(20 * time.Millisecond):
	}
	h.clock.Advance(time.Second)
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
	eventually(t, "the limit's timer", pending(h, fakeclock.Start.Add(30*time.Second)))
	h.clock.Advance(29 * time.Second)
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
	var runs atomic.Int32
	runsSoFar := func() int { return int(runs.Load()) }
	job := func(ctx context.Context, _ []byte) error {
		if runs.Add(1) < 3 {
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
	}, quietTickers)
	h.stepSleeps(t, 10*time.Second) // the backoffs (1 s, 2 s) pass; the limit does not
	done := make(chan error, 1)
	go func() { done <- h.p.Process(context.Background(), limited(`{}`, 30)) }()
	eventually(t, "the third run", func() bool { return len(h.slept()) == 2 && runsSoFar() == 3 })
	if p := h.clock.Pending(); len(p) == 0 || !p[0].Equal(fakeclock.Start.Add(30*time.Second)) {
		t.Fatalf("pending waits %v; want the limit 30 s from receipt, the backoffs included", p)
	}
	h.clock.Set(fakeclock.Start.Add(30 * time.Second))
	if err := wait(t, done); err != nil {
		t.Fatalf("Process: %v", err)
	}
	if _, failures, _ := h.rep.snapshot(); len(failures) != 1 || failures[0].name != longrun.ErrNameJobTimeout {
		t.Fatalf("failures %+v, want %s after the retries", failures, longrun.ErrNameJobTimeout)
	}
}

func TestNoLimitWithoutLimits(t *testing.T) {
	t.Parallel()
	release, reports := make(chan struct{}), make(chan longrun.Progress)
	h := setup(t, blockingJob(release, reports))
	done := make(chan error, 1)
	go func() { done <- h.p.Process(context.Background(), message(`{}`)) }()
	// Once the job runs, its limit would be pending: it is set before.
	reports <- longrun.Progress{Percent: 1}
	ticks := []time.Time{fakeclock.Start.Add(progressEvery), fakeclock.Start.Add(heartbeatEvery)}
	eventually(t, "heartbeat and progress tickers, and no limit", func() bool { return slices.Equal(h.clock.Pending(), ticks) })
	close(release)
	if err := wait(t, done); err != nil {
		t.Fatalf("Process: %v", err)
	}
}
