package settle_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/fakeclock"
	"github.com/longrun/longrun/internal/settle"
)

// store is an in-memory settle.Store: records and their markers.
type store struct {
	mu       sync.Mutex
	recs     map[string]*longrun.Execution
	pending  map[string]bool
	getErr   error
	finished int
}

func newStore() *store {
	return &store{recs: map[string]*longrun.Execution{}, pending: map[string]bool{}}
}

func (s *store) add(e *longrun.Execution) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[e.ID] = e
	s.pending[e.ID] = true
}

func (s *store) PendingStarts(_ context.Context, before time.Time, limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.pending {
		if e := s.recs[id]; e == nil || e.StartDate.Before(before) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, nil
}

func (s *store) ConfirmStarted(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, id)
	return nil
}

func (s *store) GetExecution(_ context.Context, _, id string) (*longrun.Execution, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return nil, s.getErr
	}
	e, ok := s.recs[id]
	if !ok {
		return nil, longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", id)
	}
	c := *e
	return &c, nil
}

func (s *store) FinishExecution(_ context.Context, id string, o longrun.Outcome) (*longrun.Execution, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.recs[id]
	if e.Status != longrun.StatusRunning {
		c := *e
		return &c, false, nil
	}
	e.Status, e.Error, e.Cause, e.StopDate = o.Status, o.Error, o.Cause, o.StopDate
	s.finished++
	c := *e
	return &c, true, nil
}

// orchestrator is an in-memory settle.Orchestrator.
type orchestrator struct {
	mu       sync.Mutex
	started  map[string]longrun.StateInput
	startErr error
	starts   int
}

func (o *orchestrator) Started(_ context.Context, id string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.started[id]
	return ok, nil
}

func (o *orchestrator) StartExecution(_ context.Context, in longrun.StateInput) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.starts++
	if o.startErr != nil {
		return o.startErr
	}
	o.started[in.ExecutionID] = in
	return nil
}

type fixture struct {
	store    *store
	orch     *orchestrator
	clock    *fakeclock.Clock
	mu       sync.Mutex
	ended    []string // webhooks of outcomes the sweep recorded
	resent   []string // webhooks ensured for outcomes recorded before
	endedErr error    // Ended fails with it
	sweep    *settle.Sweeper
	start0   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f := &fixture{store: newStore(), orch: &orchestrator{started: map[string]longrun.StateInput{}}, clock: fakeclock.At(start), start0: start}
	f.sweep = settle.New(settle.Config{
		Store: f.store, Orchestrator: f.orch, Clock: f.clock, Limit: 3,
		StateInput: func(e *longrun.Execution) longrun.StateInput {
			return longrun.StateInput{ExecutionID: e.ID, ExecutionARN: e.ARN, Input: e.Input, Job: e.Job, Limits: longrun.Limits{TimeoutSeconds: 7}}
		},
		Ended: func(_ context.Context, e *longrun.Execution, recorded bool) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.endedErr != nil {
				return f.endedErr
			}
			if recorded {
				f.ended = append(f.ended, e.ID)
			} else {
				f.resent = append(f.resent, e.ID)
			}
			return nil
		},
	})
	return f
}

func (f *fixture) record(id string, start time.Time) *longrun.Execution {
	e := &longrun.Execution{ID: id, ARN: "arn:" + id, Tenant: "t", Status: longrun.StatusRunning, Input: json.RawMessage(`{"n":1}`), Job: "k", StartDate: start}
	f.store.add(e)
	return e
}

// apiError is a Step Functions error as the SDK returns it.
type apiError struct {
	code  string
	fault smithy.ErrorFault
}

func (e apiError) Error() string                 { return e.code }
func (e apiError) ErrorCode() string             { return e.code }
func (e apiError) ErrorMessage() string          { return e.code }
func (e apiError) ErrorFault() smithy.ErrorFault { return e.fault }

func TestSettle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		age         time.Duration // of the record when the sweep runs
		running     bool          // its execution exists
		status      longrun.Status
		startErr    error
		want        settle.Result
		wantStatus  longrun.Status
		wantPending bool
		wantEnded   bool
	}{
		{name: "within the grace period: left alone", age: time.Minute, want: settle.Result{}, wantStatus: longrun.StatusRunning, wantPending: true},
		{name: "started, marker lost: confirmed", age: 5 * time.Minute, running: true, want: settle.Result{Found: 1, Confirmed: 1}, wantStatus: longrun.StatusRunning},
		{name: "never started: started", age: 5 * time.Minute, want: settle.Result{Found: 1, Started: 1}, wantStatus: longrun.StatusRunning},
		{name: "already ended: marker cleared", age: 5 * time.Minute, status: longrun.StatusAborted, want: settle.Result{Found: 1, Confirmed: 1}, wantStatus: longrun.StatusAborted},
		{name: "started meanwhile by a replay", age: 5 * time.Minute, startErr: longrun.Errorf(longrun.EDUPLICATE, "exists"), want: settle.Result{Found: 1, Started: 1}, wantStatus: longrun.StatusRunning},
		{name: "refused for good: failed", age: 5 * time.Minute, startErr: apiError{"StateMachineDoesNotExist", smithy.FaultClient}, want: settle.Result{Found: 1, Failed: 1}, wantStatus: longrun.StatusFailed, wantEnded: true},
		{name: "throttled: retried next run", age: 5 * time.Minute, startErr: apiError{"ThrottlingException", smithy.FaultClient}, want: settle.Result{Found: 1, Skipped: 1}, wantStatus: longrun.StatusRunning, wantPending: true},
		{name: "service error: retried next run", age: 5 * time.Minute, startErr: errors.New("connection reset"), want: settle.Result{Found: 1, Skipped: 1}, wantStatus: longrun.StatusRunning, wantPending: true},
		{name: "past the retry window: failed without a start", age: settle.DefaultGiveUpAfter + time.Minute, want: settle.Result{Found: 1, Failed: 1}, wantStatus: longrun.StatusFailed, wantEnded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			e := f.record("01-a", f.start0)
			if tt.status != "" {
				e.Status = tt.status
			}
			if tt.running {
				f.orch.started[e.ID] = longrun.StateInput{ExecutionID: e.ID}
			}
			f.orch.startErr = tt.startErr
			f.clock.Advance(tt.age)
			got, err := f.sweep.Run(context.Background())
			if err != nil || got != tt.want {
				t.Fatalf("Run = %+v, %v; want %+v", got, err, tt.want)
			}
			rec, _ := f.store.GetExecution(context.Background(), "", e.ID)
			if rec.Status != tt.wantStatus || f.store.pending[e.ID] != tt.wantPending {
				t.Errorf("record %s, pending %v; want %s, pending %v", rec.Status, f.store.pending[e.ID], tt.wantStatus, tt.wantPending)
			}
			if tt.wantStatus == longrun.StatusFailed && (rec.Error != longrun.ErrNameStartFailed || rec.Cause == "") {
				t.Errorf("failed with %q %q, want %s and a cause", rec.Error, rec.Cause, longrun.ErrNameStartFailed)
			}
			if (len(f.ended) == 1) != tt.wantEnded {
				t.Errorf("webhooks sent for %v, want one: %v", f.ended, tt.wantEnded)
			}
			if tt.want.Started == 1 && tt.startErr == nil {
				in := f.orch.started[e.ID]
				if in.ExecutionARN != e.ARN || string(in.Input) != `{"n":1}` || in.Job != "k" || in.Limits.TimeoutSeconds != 7 {
					t.Errorf("started with %+v, want the record's state input", in)
				}
			}
			if tt.age > settle.DefaultGiveUpAfter && f.orch.starts != 0 {
				t.Errorf("%d starts past the retry window, want none", f.orch.starts)
			}
		})
	}
}

// A run settles at most Limit records; the next run takes the rest.
func TestRunIsBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, id := range []string{"01-a", "01-b", "01-c", "01-d", "01-e"} {
		f.record(id, f.start0)
	}
	f.clock.Advance(10 * time.Minute)
	for i, want := range []int{3, 2, 0} {
		got, err := f.sweep.Run(context.Background())
		if err != nil || got.Found != want || got.Started != want {
			t.Fatalf("run %d = %+v, %v; want %d found and started", i, got, err, want)
		}
	}
	if len(f.orch.started) != 5 {
		t.Errorf("%d started, want 5", len(f.orch.started))
	}
}

// Concurrent sweeps (two scheduled runs overlapping) settle each record
// once: one failure recorded and one webhook, however many runs race.
func TestConcurrentSweepsAgree(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.record("01-a", f.start0)
	f.clock.Advance(settle.DefaultGiveUpAfter + time.Hour)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := f.sweep.Run(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if f.store.finished != 1 || len(f.ended) != 1 {
		t.Errorf("%d outcomes recorded and %d webhooks, want one of each", f.store.finished, len(f.ended))
	}
}

// A record that disappeared (a start rolled back) is nothing to settle;
// a store that cannot be read leaves the record for the next run.
func TestSettleReadErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if got, err := f.sweep.Settle(context.Background(), "01-gone"); err != nil || got != settle.Confirmed {
		t.Errorf("Settle(deleted) = %q, %v; want confirmed", got, err)
	}
	f.record("01-a", f.start0)
	f.store.getErr = errors.New("throttled")
	f.clock.Advance(10 * time.Minute)
	if got, err := f.sweep.Run(context.Background()); err != nil || got != (settle.Result{Found: 1, Skipped: 1}) {
		t.Errorf("Run with the store failing = %+v, %v; want the record skipped", got, err)
	}
}

// A run that dies between failing a record and getting its webhook under
// way (here: the webhook's first save fails) leaves the record marked; a
// later run, once the failing run is surely gone, sends the webhook and
// clears the marker.
func TestFailedStartsWebhookIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.record("01-a", f.start0)
	f.clock.Advance(settle.DefaultGiveUpAfter + time.Hour)
	f.endedErr = errors.New("store unavailable")
	if got, err := f.sweep.Run(context.Background()); err != nil || got != (settle.Result{Found: 1, Skipped: 1}) {
		t.Fatalf("Run with the webhook failing = %+v, %v; want the record skipped", got, err)
	}
	f.endedErr = nil
	if !f.store.pending["01-a"] || f.store.finished != 1 {
		t.Fatalf("after the failed webhook: pending %v, %d outcomes; want the FAILED record still marked", f.store.pending["01-a"], f.store.finished)
	}
	// At once: the run that failed it may still be sending.
	if got, err := f.sweep.Run(context.Background()); err != nil || got != (settle.Result{Found: 1, Deferred: 1}) {
		t.Fatalf("Run right after = %+v, %v; want it deferred", got, err)
	}
	f.clock.Advance(settle.DefaultGrace)
	if got, err := f.sweep.Run(context.Background()); err != nil || got != (settle.Result{Found: 1, Failed: 1}) {
		t.Fatalf("Run after the grace period = %+v, %v; want the webhook sent", got, err)
	}
	if len(f.resent) != 1 || f.store.pending["01-a"] || f.store.finished != 1 {
		t.Errorf("webhooks ensured %v, pending %v, %d outcomes; want one webhook, no marker, one outcome", f.resent, f.store.pending["01-a"], f.store.finished)
	}
}
