package local

import (
	"database/sql"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
)

// TestCrashRestart drops the engine at several points of an execution and
// starts a new one on the same file; the execution must end exactly as it
// does without the crash, and no task message may be lost or duplicated.
func TestCrashRestart(t *testing.T) {
	t.Parallel()
	limits := longrun.Limits{TimeoutSeconds: 100, HeartbeatSeconds: 30}
	success := func(t *testing.T, f *fixture, token string) {
		t.Helper()
		if err := f.e.SendTaskSuccess(f.ctx, token, json.RawMessage(`{"msg":"done"}`)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		// run drives one execution and calls crash at the point under test.
		run func(t *testing.T, f *fixture, crash func()) string
	}{
		{
			name: "after start",
			run: func(t *testing.T, f *fixture, crash func()) string {
				arn := f.startJob("job-1", `{"n":1}`, limits)
				crash()
				tm, _ := f.takeTask()
				success(t, f, tm.TaskToken)
				return arn
			},
		},
		{
			name: "token pending",
			run: func(t *testing.T, f *fixture, crash func()) string {
				arn := f.startJob("job-1", `{"n":1}`, limits)
				tm, _ := f.takeTask()
				crash()
				if err := f.e.SendTaskHeartbeat(f.ctx, tm.TaskToken); err != nil {
					t.Fatalf("heartbeat with the token from before the restart: %v", err)
				}
				success(t, f, tm.TaskToken)
				return arn
			},
		},
		{
			name: "heartbeat deadline survives",
			run: func(t *testing.T, f *fixture, crash func()) string {
				arn := f.startHeartbeatJob("job-1", `{"n":1}`, longrun.Limits{TimeoutSeconds: 100, HeartbeatSeconds: 10})
				f.takeTask()
				crash()
				for attempt := 1; attempt <= 3; attempt++ {
					f.clock.Advance(10 * time.Second)
					f.waitEvents(arn, "TaskTimedOut:Work", attempt)
					if attempt < 3 {
						f.clock.Advance(time.Duration(5*attempt) * time.Second)
						f.takeTask()
					}
				}
				return arn
			},
		},
		{
			name: "during a wait",
			run: func(t *testing.T, f *fixture, crash func()) string {
				arn, err := f.e.Start(f.ctx, "flow", "flow-1", json.RawMessage(`{"kind":"wait"}`))
				if err != nil {
					t.Fatal(err)
				}
				f.waitState(arn, "Pause")
				f.clock.Advance(5 * time.Second)
				crash()
				f.clock.Advance(5 * time.Second)
				return arn
			},
		},
		{
			name: "after SendTaskSuccess before Finalize ran",
			run: func(t *testing.T, f *fixture, crash func()) string {
				calling := make(chan struct{}, 1)
				f.notify.set(func(r *recorder) { r.block, r.calling = make(chan struct{}), calling })
				arn := f.startJob("job-1", `{"n":1}`, limits)
				tm, _ := f.takeTask()
				success(t, f, tm.TaskToken)
				<-calling // Finalize's invocation is under way
				crash()
				f.notify.set(func(r *recorder) {
					if r.block != nil {
						close(r.block)
					}
					r.block = nil
				})
				return arn
			},
		},
		{
			name: "during a retry backoff",
			run: func(t *testing.T, f *fixture, crash func()) string {
				f.notify.set(func(r *recorder) { r.fail = 1 })
				arn := f.startJob("job-1", `{"n":1}`, limits)
				tm, _ := f.takeTask()
				success(t, f, tm.TaskToken)
				f.waitEvents(arn, "TaskFailed:Finalize", 1)
				crash()
				f.clock.Advance(2 * time.Second)
				return arn
			},
		},
		{
			name: "stopped after a restart",
			run: func(t *testing.T, f *fixture, crash func()) string {
				arn := f.startJob("job-1", `{"n":1}`, limits)
				tm, _ := f.takeTask()
				crash()
				if err := f.e.StopExecution(f.ctx, arn, "User.Stop", "bye"); err != nil {
					t.Fatal(err)
				}
				if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, json.RawMessage(`{}`)); !longrun.IsCode(err, longrun.ETASKGONE) {
					t.Errorf("SendTaskSuccess after stop = %v, want ETASKGONE", err)
				}
				return arn
			},
		},
	}
	type outcome struct {
		status           longrun.Status
		output           string
		errName, cause   string
		history          []string
		finalized, queue int
	}
	result := func(t *testing.T, f *fixture, arn string) outcome {
		d := f.waitEnd(arn)
		finalized := 0
		for _, p := range f.notify.payloads() {
			var req longrun.NotifyRequest
			if err := json.Unmarshal(p, &req); err != nil {
				t.Fatal(err)
			}
			if req.Action == longrun.NotifyFinalize {
				finalized++
			}
		}
		return outcome{
			status: d.Status, output: string(d.Output), errName: d.Error, cause: d.Cause,
			history: historyTypes(t, f.e, arn), finalized: min(finalized, 1), queue: f.queued(),
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plain := setup(t)
			want := result(t, plain, tc.run(t, plain, func() {}))

			f := setup(t)
			got := result(t, f, tc.run(t, f, f.crash))
			if got.status != want.status || got.output != want.output || got.errName != want.errName || got.cause != want.cause ||
				got.finalized != want.finalized || got.queue != 0 || want.queue != 0 {
				t.Errorf("with a crash: %+v\nwithout:      %+v", got, want)
			}
			if !slices.Equal(got.history, want.history) {
				t.Errorf("history with a crash\n %v\nwithout\n %v", got.history, want.history)
			}
		})
	}
}

// TestCrashAfterSendCommitted: a sendMessage without a token has committed
// (message and state together) but its result was not applied when the
// engine died; the restarted engine applies the stored result and sends
// nothing again.
func TestCrashAfterSendCommitted(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var once sync.Once
	stop := func() { once.Do(f.stop) }
	f.e.afterCommit.Store(&stop)
	arn, err := f.e.Start(f.ctx, "send", "s-1", json.RawMessage(`{"name":"world"}`))
	if err != nil {
		t.Fatal(err)
	}
	f.halt()
	if got := historyTypes(t, f.e, arn); len(got) != 4 || got[3] != "TaskStarted:Send" {
		t.Fatalf("history before the restart went on: %v", got)
	}
	f.open()
	d := f.waitEnd(arn)
	if d.Status != longrun.StatusSucceeded {
		t.Fatalf("ended %s %s %s", d.Status, d.Error, d.Cause)
	}
	if n := f.queued(); n != 1 {
		t.Errorf("%d messages in the queue, want 1", n)
	}
	if got := historyTypes(t, f.e, arn); count(got, "TaskStarted:Send") != 1 || count(got, "TaskSucceeded:Send") != 1 {
		t.Errorf("history %v", got)
	}
}

// TestFailingWriteIsolated: when one execution's writes fail (here a
// trigger refuses them), the batch is retried a change at a time, so the
// others go on and only that execution's callers see the error.
func TestFailingWriteIsolated(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	f := setup(t, withLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	limits := longrun.Limits{TimeoutSeconds: 100, HeartbeatSeconds: 10}
	poison := f.startJob("poison", `{}`, limits)
	healthy := f.startJob("healthy", `{}`, limits)
	tokens := map[string]string{}
	for range 2 {
		tm, _ := f.takeTask()
		tokens[tm.ExecutionID] = tm.TaskToken
	}
	if err := f.db.Write(f.ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(f.ctx, `CREATE TRIGGER poison BEFORE UPDATE ON local_executions
			WHEN NEW.arn = '`+poison+`' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, id := range []string{"poison", "healthy"} {
		go func() { errs <- f.e.SendTaskSuccess(f.ctx, tokens[id], json.RawMessage(`{"id":"`+id+`"}`)) }()
	}
	var failed int
	for range 2 {
		if err := <-errs; err != nil {
			if !strings.Contains(err.Error(), "poisoned") {
				t.Errorf("SendTaskSuccess: %v", err)
			}
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d SendTaskSuccess calls failed, want the poisoned one only", failed)
	}
	if d := f.waitEnd(healthy); d.Status != longrun.StatusSucceeded {
		t.Errorf("healthy execution ended %s", d.Status)
	}
	// The poisoned execution's heartbeat timeout cannot commit either: it
	// is parked, and left RUNNING on disk meanwhile.
	f.clock.Advance(10 * time.Second)
	f.waitFor("the engine to park the poisoned execution", func() bool {
		f.clock.Advance(100 * time.Millisecond) // the pause between failed commits
		return strings.Contains(logs.String(), "execution parked after failed commits")
	})
	if d := f.describe(poison); d.Status != longrun.StatusRunning || d.State != "Work" {
		t.Errorf("poisoned execution %s in %s, want RUNNING in Work", d.Status, d.State)
	}
	// Once writes succeed again (a full disk freed), it resumes by itself,
	// without a restart: its heartbeat timeout commits.
	if err := f.db.Write(f.ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(f.ctx, `DROP TRIGGER poison`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.waitFor("the parked execution to resume", func() bool {
		f.clock.Advance(time.Second)
		return slices.Contains(historyTypes(t, f.e, poison), "TaskTimedOut:Work")
	})
}
