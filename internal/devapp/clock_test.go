package devapp_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/fakeclock"
)

// One clock: the worker of longrun dev runs on the database's clock, as the
// engine and the queue do. On one fake clock, a job is failed with
// Job.Timeout when its kind's Timeout has passed on that clock, and its
// lease, renewed on the same clock, keeps its message from any other
// worker meanwhile, though the lease (a minute) passes twice over.
func TestOneClockDrivesTheWorker(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	var runs atomic.Int32
	reg := longrun.NewRegistry()
	reg.Handle("stuck", func(ctx context.Context, _ json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
		runs.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	}, longrun.JobOptions{Timeout: 2 * time.Minute})
	app, url := serve(t, devapp.Config{Jobs: reg, Clock: clock})
	id := newClient(t, url, keyFor(t, app, "acme")).start(t)

	deadline := time.Now().Add(10 * time.Second)
	for runs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the job did not start within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	received := clock.Now()
	var e *longrun.Execution
	for {
		var err error
		if e, err = app.Executions.GetExecution(context.Background(), "", id); err != nil {
			t.Fatal(err)
		}
		if e.Status != longrun.StatusRunning || clock.Now().Sub(received) > 5*time.Minute || time.Now().After(deadline) {
			break
		}
		clock.Advance(time.Second) // the worker reacts in its own goroutines
		time.Sleep(2 * time.Millisecond)
	}
	took := clock.Now().Sub(received)
	if e.Status != longrun.StatusFailed || e.Error != longrun.ErrNameJobTimeout || took < 2*time.Minute || took > 2*time.Minute+10*time.Second {
		t.Fatalf("execution %s %s after %s on the clock; want %s %s once the kind's 2m Timeout passed", e.Status, e.Error, took, longrun.StatusFailed, longrun.ErrNameJobTimeout)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the job ran %d times; its lease, renewed on the same clock, must keep it from other workers", n)
	}
}
