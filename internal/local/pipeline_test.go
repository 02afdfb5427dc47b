package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/sqlite"
)

// gatedDB is the engine's DB with its next writes held at a gate until the
// test releases them, and failed on demand (after running the batch's
// writes, so the transaction rolls back as a failed commit does).
type gatedDB struct {
	*sqlite.DB
	mu     sync.Mutex
	plan   []*gate
	writes int // calls of Write
}

type gate struct {
	entered, release chan struct{}
	fail             bool
}

func newGate(fail bool) *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{}), fail: fail}
}

var errInjected = errors.New("injected commit failure")

func (g *gatedDB) hold(gates ...*gate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.plan = append(g.plan, gates...)
}

func (g *gatedDB) Write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	g.mu.Lock()
	g.writes++
	var gt *gate
	if len(g.plan) > 0 {
		gt, g.plan = g.plan[0], g.plan[1:]
	}
	g.mu.Unlock()
	if gt == nil {
		return g.DB.Write(ctx, fn)
	}
	close(gt.entered)
	<-gt.release
	return g.DB.Write(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if gt.fail {
			return errInjected
		}
		return nil
	})
}

// pipelined is a fixture whose engine writes through a gatedDB, and a
// channel that gets a value each time commands are stepped on top of a
// batch that is committing.
func pipelined(t *testing.T) (*fixture, *gatedDB, chan struct{}) {
	t.Helper()
	var g *gatedDB
	f := setup(t, func(f *fixture) {
		f.wrap = func(db *sqlite.DB) DB {
			g = &gatedDB{DB: db}
			return g
		}
	})
	stacked := make(chan struct{}, 16)
	fn := func() { stacked <- struct{}{} }
	f.e.onStacked.Store(&fn)
	return f, g, stacked
}

func waitChan(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func finalizes(f *fixture) int {
	n := 0
	for _, p := range f.notify.payloads() {
		var req longrun.NotifyRequest
		if json.Unmarshal(p, &req) == nil && req.Action == longrun.NotifyFinalize {
			n++
		}
	}
	return n
}

// checkEventIDs checks the history's ids run 1, 2, 3... with no gap and no
// repeat: a rollback restores each execution's event count too.
func checkEventIDs(t *testing.T, f *fixture, arn string) {
	t.Helper()
	h, err := f.e.History(f.ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range h {
		if ev.ID != int64(i+1) {
			t.Fatalf("event %d has id %d: %v", i+1, ev.ID, historyTypes(t, f.e, arn))
		}
	}
}

// TestFailedCommitUndoesTheBatchSteppedOnIt: a stop is stepped on top of a
// task success whose commit then fails. The stop was applied to a state
// that never committed, so it is undone too and applied again alone: the
// execution is aborted from Work, the success's caller gets the error, and
// the success's effect (Finalize's invocation of notify) never starts.
func TestFailedCommitUndoesTheBatchSteppedOnIt(t *testing.T) {
	t.Parallel()
	f, g, stacked := pipelined(t)
	limits := longrun.Limits{TimeoutSeconds: 100, HeartbeatSeconds: 10}
	arn := f.startJob("a", `{}`, limits)
	tm, _ := f.takeTask()

	first := newGate(true)
	g.hold(first)
	success := make(chan error, 1)
	go func() { success <- f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{"ok":true}`)) }()
	waitChan(t, first.entered, "the success's commit")
	stopped := make(chan error, 1)
	go func() { stopped <- f.e.StopExecution(f.ctx, arn, "Test.Stop", "stopped by the test") }()
	waitChan(t, stacked, "the stop stepped on top of the success")
	close(first.release)

	if err := <-success; !errors.Is(err, errInjected) {
		t.Errorf("SendTaskSuccess: %v, want the injected failure", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("StopExecution: %v", err)
	}
	d := f.waitEnd(arn)
	if d.Status != longrun.StatusAborted || d.State != "Work" {
		t.Errorf("ended %s in %s, want ABORTED in Work", d.Status, d.State)
	}
	h := historyTypes(t, f.e, arn)
	if slices.Contains(h, "TaskSucceeded:Work") || !slices.Contains(h, "ExecutionAborted") {
		t.Errorf("history %v", h)
	}
	checkEventIDs(t, f, arn)
	f.sync()
	if n := finalizes(f); n != 0 {
		t.Errorf("notify finalized %d times: an effect of a batch that never committed", n)
	}
	// The token was never used: the restored state still knows it, and
	// the execution has ended, so it is gone now.
	if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{}`)); !longrun.IsCode(err, longrun.ETASKGONE) {
		t.Errorf("SendTaskSuccess after the stop: %v", err)
	}
}

// TestStackedBatchFailsAlone: the success commits, the stop stepped on top
// of it fails to commit. Only the stop is undone: the execution goes back
// to the state the success committed (Finalize, invoking notify), whose
// effect starts once the stop is undone, and it succeeds.
func TestStackedBatchFailsAlone(t *testing.T) {
	t.Parallel()
	f, g, stacked := pipelined(t)
	limits := longrun.Limits{TimeoutSeconds: 100, HeartbeatSeconds: 10}
	arn := f.startJob("a", `{}`, limits)
	tm, _ := f.takeTask()

	first, second := newGate(false), newGate(true)
	close(second.release)
	g.hold(first, second)
	success := make(chan error, 1)
	go func() { success <- f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{"ok":true}`)) }()
	waitChan(t, first.entered, "the success's commit")
	stopped := make(chan error, 1)
	go func() { stopped <- f.e.StopExecution(f.ctx, arn, "Test.Stop", "stopped by the test") }()
	waitChan(t, stacked, "the stop stepped on top of the success")
	close(first.release)

	if err := <-success; err != nil {
		t.Errorf("SendTaskSuccess: %v", err)
	}
	if err := <-stopped; !errors.Is(err, errInjected) {
		t.Errorf("StopExecution: %v, want the injected failure", err)
	}
	d := f.waitEnd(arn)
	if d.Status != longrun.StatusSucceeded {
		t.Errorf("ended %s %s %s, want SUCCEEDED", d.Status, d.Error, d.Cause)
	}
	h := historyTypes(t, f.e, arn)
	if slices.Contains(h, "ExecutionAborted") || !slices.Contains(h, "TaskSucceeded:Work") || !slices.Contains(h, "ExecutionSucceeded") {
		t.Errorf("history %v", h)
	}
	checkEventIDs(t, f, arn)
	if n := finalizes(f); n != 1 {
		t.Errorf("notify finalized %d times, want once", n)
	}
}

// TestStartsSteppedOnAFailedBatch: starts stepped on top of a batch of
// starts that fails are undone and applied again one at a time; each
// caller learns its own outcome and every execution starts once.
func TestStartsSteppedOnAFailedBatch(t *testing.T) {
	t.Parallel()
	f, g, stacked := pipelined(t)
	limits := longrun.Limits{TimeoutSeconds: 100, HeartbeatSeconds: 10}
	first := newGate(true)
	g.hold(first)
	errs := make(chan error, 8)
	start := func(id string) {
		in := longrun.StateInput{ExecutionID: id, ExecutionARN: f.e.ExecutionARN(id), Input: json.RawMessage(`{}`), Limits: limits,
			BackstopSeconds: limits.TimeoutSeconds, QueueURL: testQueueURL}
		errs <- f.e.StartExecution(f.ctx, in)
	}
	go start("a")
	waitChan(t, first.entered, "the first start's commit")
	// The same name again (stepped as a replay of the uncommitted start)
	// and others, on top of it.
	for _, id := range []string{"a", "b", "c"} {
		go start(id)
		waitChan(t, stacked, "a start stepped on top of the first")
	}
	close(first.release)
	var failed int
	for range 4 {
		if err := <-errs; err != nil {
			if !errors.Is(err, errInjected) {
				t.Errorf("StartExecution: %v", err)
			}
			failed++
		}
	}
	// The first start fails alone; the replay of "a" then starts it.
	if failed != 1 {
		t.Errorf("%d starts failed, want 1 (the first)", failed)
	}
	for _, id := range []string{"a", "b", "c"} {
		arn := f.e.ExecutionARN(id)
		if d := f.describe(arn); d.Status != longrun.StatusRunning || d.State != "Work" {
			t.Errorf("%s: %s in %s", id, d.Status, d.State)
		}
		if h := historyTypes(t, f.e, arn); strings.Count(strings.Join(h, " "), "ExecutionStarted") != 1 {
			t.Errorf("%s: history %v", id, h)
		}
		checkEventIDs(t, f, arn)
	}
	if n := f.queued(); n != 3 {
		t.Errorf("%d task messages, want 3", n)
	}
}

// TestHeartbeatAnsweredBeforeItsCommit: a heartbeat on a live task whose
// state has no HeartbeatSeconds writes nothing, so it is answered when it is
// stepped, even while another batch's commit is held at the writer, and it
// writes no transaction of its own; a job started on receipt does not wait a
// commit for it.
func TestHeartbeatAnsweredBeforeItsCommit(t *testing.T) {
	t.Parallel()
	f, g, stacked := pipelined(t)
	limits := longrun.Limits{TimeoutSeconds: 100, HeartbeatSeconds: 10}
	f.startJob("a", `{}`, limits)
	tm, _ := f.takeTask()

	held := newGate(false)
	g.hold(held)
	release := sync.OnceFunc(func() { close(held.release) })
	defer release() // a failure below must not leave the engine's write held
	started := make(chan error, 1)
	go func() {
		id := "b"
		started <- f.e.StartExecution(f.ctx, longrun.StateInput{ExecutionID: id, ExecutionARN: f.e.ExecutionARN(id), Input: json.RawMessage(`{}`),
			Limits: limits, BackstopSeconds: limits.TimeoutSeconds, QueueURL: testQueueURL})
	}()
	waitChan(t, held.entered, "another start's commit at the writer")
	beat := make(chan error, 1)
	go func() { beat <- f.e.SendTaskHeartbeat(f.ctx, tm.TaskToken) }()
	waitChan(t, stacked, "the heartbeat stepped on top of it")
	select {
	case err := <-beat:
		if err != nil {
			t.Errorf("SendTaskHeartbeat = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the heartbeat waited for a commit")
	}
	release()
	if err := <-started; err != nil {
		t.Fatalf("the other start: %v", err)
	}
	// A heartbeat alone, then a start: one transaction, the start's (the
	// engine takes commands in order, so the heartbeat's batch is written
	// or not before the start's).
	g.mu.Lock()
	before := g.writes
	g.mu.Unlock()
	if err := f.e.SendTaskHeartbeat(f.ctx, tm.TaskToken); err != nil {
		t.Fatalf("SendTaskHeartbeat: %v", err)
	}
	f.startJob("c", `{}`, limits)
	g.mu.Lock()
	if n := g.writes - before; n != 1 {
		t.Errorf("a heartbeat and a start took %d transactions, want 1 (the start's)", n)
	}
	g.mu.Unlock()
	if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{"ok":true}`)); err != nil {
		t.Fatalf("SendTaskSuccess after the heartbeat: %v", err)
	}
	if err := f.e.SendTaskHeartbeat(f.ctx, tm.TaskToken); !longrun.IsCode(err, longrun.ETASKGONE) {
		t.Errorf("heartbeat on an answered task = %v, want ETASKGONE", err)
	}
}
