package worker_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/asl"
	"github.com/longrun/longrun/internal/fakeclock"
	"github.com/longrun/longrun/internal/local"
	"github.com/longrun/longrun/internal/sqlite"
	"github.com/longrun/longrun/internal/worker"
)

const (
	jobsURL   = "http://sqs.local.localhost/000000000000/JobsQueue"
	notifyARN = "arn:aws:lambda:local:000000000000:function:NotifyFunction"
)

// engine is the real statemachine/longrun.asl.json on the local engine and
// its SQLite queue, with the real worker polling it, all on one fake clock.
type engine struct {
	t      *testing.T
	clock  *fakeclock.Clock
	e      *local.Engine
	queue  *sqlite.Queue
	mu     sync.Mutex
	notify []longrun.NotifyRequest
}

func newEngine(t *testing.T) *engine {
	t.Helper()
	en := &engine{t: t, clock: fakeclock.New()}
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "longrun.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Clock = en.clock
	t.Cleanup(func() { _ = db.Close() })
	en.queue = sqlite.NewQueue(db, "JobsQueue", sqlite.QueueConfig{})
	var machines []local.Machine
	for _, name := range []string{"longrun", "deliver"} {
		raw, err := os.ReadFile("../../statemachine/" + name + ".asl.json")
		if err != nil {
			t.Fatal(err)
		}
		def, err := asl.Substitute(raw, map[string]string{"JobsQueueUrl": jobsURL, "NotifyFunctionArn": notifyARN})
		if err != nil {
			t.Fatal(err)
		}
		machines = append(machines, local.Machine{Name: name, ARN: "arn:aws:states:local:000000000000:stateMachine:" + name, Definition: def})
	}
	en.e, err = local.New(t.Context(), local.Config{
		DB: db, Clock: db.Clock, Machines: machines, Main: "longrun", Deliver: "deliver",
		Functions: map[string]local.Function{"NotifyFunction": en.record},
		Queues:    map[string]longrun.Queue{jobsURL: en.queue},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- en.e.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	return en
}

func (en *engine) record(_ context.Context, payload json.RawMessage) (json.RawMessage, error) {
	var req longrun.NotifyRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, err
	}
	en.mu.Lock()
	en.notify = append(en.notify, req)
	en.mu.Unlock()
	return json.RawMessage(`{}`), nil
}

// start starts an execution as the start route does for a kind whose job
// limit is limit seconds: the Work state's backstop is that plus a day.
func (en *engine) start(id, kind string, limit int) string {
	en.t.Helper()
	in := longrun.StateInput{ExecutionID: id, ExecutionARN: en.e.ExecutionARN(id), Input: json.RawMessage(`{}`), Job: kind,
		Limits: longrun.Limits{TimeoutSeconds: limit, HeartbeatSeconds: 60}, BackstopSeconds: longrun.Backstop(limit, 0), QueueURL: jobsURL}
	if err := en.e.StartExecution(en.t.Context(), in); err != nil {
		en.t.Fatal(err)
	}
	return in.ExecutionARN
}

// poll runs the worker on the queue until the test ends.
func (en *engine) poll(jobs *longrun.Registry) {
	p := worker.NewPoller(worker.PollerConfig{
		Queue:      en.queue,
		Processor:  worker.NewProcessor(worker.Config{Tasks: en.e, Executions: nopStore{}, Jobs: jobs, HeartbeatInterval: 20 * time.Second, Clock: en.clock}),
		Visibility: time.Minute, Wait: time.Second, Clock: en.clock,
	})
	ctx, stop := context.WithCancel(en.t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	en.t.Cleanup(func() {
		stop()
		for { // a job still running drains on the fake clock
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
				en.clock.Advance(time.Second)
			}
		}
	})
}

func (en *engine) waitEnd(arn string) *local.Description {
	en.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := en.e.Describe(en.t.Context(), arn)
		if err != nil {
			en.t.Fatal(err)
		}
		if d.Status.Terminal() {
			return d
		}
		if time.Now().After(deadline) {
			en.t.Fatalf("%s still %s in %s", arn, d.Status, d.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (en *engine) finalized(id string) longrun.NotifyRequest {
	en.mu.Lock()
	defer en.mu.Unlock()
	for _, r := range en.notify {
		if r.ExecutionID == id && r.Action == longrun.NotifyFinalize {
			return r
		}
	}
	en.t.Fatalf("no finalize for %s in %+v", id, en.notify)
	return longrun.NotifyRequest{}
}

// nopStore takes progress and nothing else.
type nopStore struct{ longrun.ExecutionStore }

func (nopStore) SetProgress(context.Context, string, longrun.Progress) error { return nil }

// A job that waited in the queue four times its own limit still runs and
// succeeds: its limit counts from receipt, and the Work state's backstop
// (the limit plus the queue wait) is far off.
func TestQueueWaitDoesNotCountAgainstTheJobLimit(t *testing.T) {
	t.Parallel()
	en := newEngine(t)
	arn := en.start("waited", "quick", 30)
	eventually(t, "the task message in the queue", func() bool { return en.clock.Waits() > 0 })
	en.clock.Advance(120 * time.Second) // four limits, and no worker yet

	jobs := longrun.NewRegistry()
	jobs.Handle("quick", func(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
		return json.RawMessage(`{"ok":true}`), nil
	}, longrun.JobOptions{Timeout: 30 * time.Second})
	en.poll(jobs)
	if d := en.waitEnd(arn); d.Status != longrun.StatusSucceeded {
		t.Fatalf("ended %s %s: %s, want SUCCEEDED", d.Status, d.Error, d.Cause)
	}
	if r := en.finalized("waited"); r.Status != longrun.StatusSucceeded {
		t.Fatalf("finalize %+v", r)
	}
}

// A job that runs past its limit is failed by the worker with Job.Timeout,
// which notify records and the execution ends with.
func TestJobPastItsLimitFails(t *testing.T) {
	t.Parallel()
	en := newEngine(t)
	started := make(chan struct{})
	jobs := longrun.NewRegistry()
	jobs.Handle("slow", func(ctx context.Context, _ json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
		close(started)
		<-ctx.Done() // never done by itself
		return nil, ctx.Err()
	}, longrun.JobOptions{Timeout: 30 * time.Second})
	en.poll(jobs)
	arn := en.start("slow-1", "slow", 30)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the job did not start")
	}
	// Second by second until the execution ends, so every tick and timer
	// fires in order; it must not end before the 30 s limit.
	from := en.clock.Now()
	for i := 0; ; i++ {
		d, err := en.e.Describe(t.Context(), arn)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.Terminal() || i > 5000 {
			break
		}
		if i%5 == 0 && en.clock.Now().Sub(from) < 40*time.Second {
			en.clock.Advance(time.Second)
		}
		time.Sleep(time.Millisecond)
	}
	if ran := en.clock.Now().Sub(from); ran < 30*time.Second {
		t.Fatalf("the job ended after %s, before its 30 s limit", ran)
	}
	d := en.waitEnd(arn)
	if d.Status != longrun.StatusFailed || d.Error != longrun.ErrNameJobTimeout || !strings.Contains(d.Cause, "30s") {
		t.Fatalf("ended %s %q: %q, want FAILED %s naming the 30s limit", d.Status, d.Error, d.Cause, longrun.ErrNameJobTimeout)
	}
	r := en.finalized("slow-1")
	if r.Status != longrun.StatusFailed || r.Failure == nil || r.Failure.Error != longrun.ErrNameJobTimeout || !strings.Contains(r.Failure.Cause, "queue does not count") {
		t.Fatalf("finalize %+v %+v, want FAILED with %s and its cause", r, r.Failure, longrun.ErrNameJobTimeout)
	}
}

// eventually waits (briefly, in real time) for cond: the engine and worker
// react to the fake clock in their own goroutines.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
