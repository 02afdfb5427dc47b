package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/fakeclock"
)

const (
	heartbeatEvery = 20 * time.Second
	progressEvery  = 5 * time.Second
)

type harness struct {
	p      *Processor
	rep    *reporter
	store  *progressStore
	clock  *fakeclock.Clock
	mu     sync.Mutex
	sleeps []time.Duration
	logs   *strings.Builder
	logMu  *sync.Mutex
}

func (h *harness) slept() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.sleeps...)
}

// quietTickers makes heartbeats and progress flushes hourly, so their ticks
// never come within stepSleeps's reach.
func quietTickers(c *Config) { c.HeartbeatInterval, c.ProgressInterval = time.Hour, time.Hour }

// stepSleeps moves the clock to each wait due within `within` of now as soon
// as it is pending, recording its length in h.sleeps, until the test ends:
// the backoffs the worker waits out pass at once, and the test learns how
// long each was. Use it with quietTickers; limits must be further off too.
func (h *harness) stepSleeps(t *testing.T, within time.Duration) {
	h.onWait(t, within, func(at time.Time) { h.clock.Set(at) })
}

// onWait calls f with the due time of the earliest wait, and records its
// length in h.sleeps, each time one due within `within` of now is pending,
// until the test ends.
func (h *harness) onWait(t *testing.T, within time.Duration, f func(at time.Time)) {
	t.Helper()
	stop := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(stop); <-stopped })
	go func() {
		defer close(stopped)
		var seen time.Time // f may leave the wait pending (a cancel): once per wait
		for {
			now := h.clock.Now()
			if p := h.clock.Pending(); len(p) > 0 && p[0].Sub(now) <= within && !p[0].Equal(seen) {
				seen = p[0]
				h.mu.Lock()
				h.sleeps = append(h.sleeps, p[0].Sub(now))
				h.mu.Unlock()
				f(p[0])
				continue
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond): // poll: the worker reacts in its own goroutines
			}
		}
	}()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (h *harness) log() string {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	return h.logs.String()
}

func setup(t *testing.T, job longrun.Job, configure ...func(*Config)) *harness {
	t.Helper()
	h := &harness{rep: &reporter{}, store: &progressStore{}, clock: fakeclock.New(), logs: &strings.Builder{}, logMu: &sync.Mutex{}}
	cfg := Config{
		Tasks: h.rep, Executions: h.store, Jobs: registryOf(job),
		HeartbeatInterval: heartbeatEvery, ProgressInterval: progressEvery,
		Clock:  h.clock,
		Logger: slog.New(slog.NewJSONHandler(lockedWriter{h.logMu, h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, c := range configure {
		c(&cfg)
	}
	h.p = NewProcessor(cfg)
	return h
}

func message(input string) longrun.TaskMessage {
	return longrun.TaskMessage{TaskToken: "tok-1", ExecutionARN: "arn:aws:states:eu-west-1:1:execution:sm:ex-1", ExecutionID: "ex-1", Input: json.RawMessage(input)}
}

func jobReturning(out string, err error) longrun.Job {
	return func(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
		if out == "" {
			return nil, err
		}
		return json.RawMessage(out), err
	}
}

func TestProcessOutcome(t *testing.T) {
	t.Parallel()
	big := `"` + strings.Repeat("x", longrun.MaxInputBytes) + `"`
	str := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` } // a JSON string of n bytes
	bigInput := str(200 << 10)
	const smallInput = `{"seconds":1}`
	tests := []struct {
		name       string
		input      string // the task's input; default smallInput
		job        longrun.Job
		wantOutput string // SendTaskSuccess output, "" for a failure
		wantName   string
		wantCause  string
		wantInLog  string
	}{
		{name: "success", job: jobReturning(`{"message":"done"}`, nil), wantOutput: `{"message":"done"}`},
		{name: "echo input", job: func(_ context.Context, in json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
			return in, nil
		}, wantOutput: `{"seconds":1}`},
		{name: "nil output", job: jobReturning("", nil), wantOutput: `null`},
		{name: "job error", job: jobReturning("", &longrun.JobError{Name: "Ramen.Failed", Cause: "out of water"}), wantName: "Ramen.Failed", wantCause: "out of water"},
		{name: "wrapped job error", job: jobReturning("", fmt.Errorf("boil: %w", &longrun.JobError{Name: "Ramen.Failed", Cause: "burnt"})), wantName: "Ramen.Failed", wantCause: "burnt"},
		{name: "plain error", job: jobReturning("", errors.New("disk full")), wantName: longrun.ErrNameJobFailed, wantCause: "disk full"},
		{name: "panic", job: func(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
			panic("index out of range [3]")
		}, wantName: longrun.ErrNameJobPanic, wantCause: "index out of range [3]", wantInLog: "processor_test.go"},
		{name: "output not JSON", job: jobReturning(`{"a":`, nil), wantName: longrun.ErrNameBadOutput, wantCause: "not JSON"},
		{name: "output too large", job: jobReturning(big, nil), wantName: longrun.ErrNameBadOutput, wantCause: "262144"},
		{name: "output and input over the state limit", input: bigInput, job: jobReturning(str(60<<10), nil), wantName: longrun.ErrNameBadOutput, wantCause: "with its 204800 bytes of input"},
		{name: "output that just fits beside the input", job: jobReturning(str(longrun.MaxInputBytes-longrun.StateOverheadBytes-len(smallInput)), nil),
			wantOutput: str(longrun.MaxInputBytes - longrun.StateOverheadBytes - len(smallInput))},
		{name: "cause truncated", job: jobReturning("", errors.New(strings.Repeat("é", longrun.MaxCauseLength+1))), wantName: longrun.ErrNameJobFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, tt.job)
			if tt.input == "" {
				tt.input = smallInput
			}
			if err := h.p.Process(context.Background(), message(tt.input)); err != nil {
				t.Fatalf("Process: %v", err)
			}
			successes, failures, _ := h.rep.snapshot()
			if tt.wantOutput != "" {
				if len(successes) != 1 || len(failures) != 0 || successes[0].output != tt.wantOutput || successes[0].token != "tok-1" {
					t.Fatalf("successes %v failures %v", successes, failures)
				}
				return
			}
			if len(failures) != 1 || len(successes) != 0 || failures[0].name != tt.wantName || !strings.Contains(failures[0].cause, tt.wantCause) {
				t.Fatalf("failures %+v successes %v; want %s/%q", failures, successes, tt.wantName, tt.wantCause)
			}
			if c := failures[0].cause; utf8.RuneCountInString(c) > longrun.MaxCauseLength || !json.Valid([]byte(fmt.Sprintf("%q", c))) {
				t.Fatalf("cause of %d bytes", len(c))
			}
			if !strings.Contains(h.log(), tt.wantInLog) || strings.Contains(failures[0].cause, "goroutine") {
				t.Fatalf("the stack must go to the log only; log: %s", h.log())
			}
		})
	}
}

// blockingJob runs until ctx ends or release is closed, reporting what the
// test sends on reports.
func blockingJob(release <-chan struct{}, reports <-chan longrun.Progress) longrun.Job {
	return func(ctx context.Context, _ json.RawMessage, report func(longrun.Progress)) (json.RawMessage, error) {
		for {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-release:
				return json.RawMessage(`"released"`), nil
			case p := <-reports:
				report(p)
			}
		}
	}
}

func TestHeartbeatTaskGoneCancelsJob(t *testing.T) {
	t.Parallel()
	h := setup(t, blockingJob(nil, nil))
	h.rep.heartbeatErr = func(n int) error {
		if n <= 2 {
			return errors.New("throttled") // transient: the job goes on
		}
		return longrun.Errorf(longrun.ETASKGONE, "TaskTimedOut")
	}
	done := make(chan error, 1)
	go func() { done <- h.p.Process(context.Background(), message(`{}`)) }()

	eventually(t, "heartbeat and progress tickers", func() bool { return h.clock.Waits() == 2 })
	if _, _, n := h.rep.snapshot(); n != 1 {
		t.Fatalf("%d heartbeats before the job's first interval, want 1: on receipt", n)
	}
	h.clock.Advance(heartbeatEvery)
	eventually(t, "second heartbeat", func() bool { _, _, n := h.rep.snapshot(); return n == 2 })
	select {
	case err := <-done:
		t.Fatalf("a failed heartbeat stopped the job: %v", err)
	default:
	}
	h.clock.Advance(heartbeatEvery)
	if err := wait(t, done); err != nil {
		t.Fatalf("Process: %v", err)
	}
	successes, failures, heartbeats := h.rep.snapshot()
	if heartbeats != 3 || len(successes)+len(failures) != 0 {
		t.Fatalf("heartbeats %d, completions %v %v; a gone task must not be completed", heartbeats, successes, failures)
	}
	if n := h.clock.Waits(); n != 0 {
		t.Fatalf("%d waits still pending: the tickers must stop with the job", n)
	}
}

func TestProcessInterruptedByShutdown(t *testing.T) {
	t.Parallel()
	h := setup(t, blockingJob(nil, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.Process(ctx, message(`{}`)) }()
	eventually(t, "tickers", func() bool { return h.clock.Waits() == 2 })
	cancel()
	if err := wait(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Process = %v, want context.Canceled so the message is retried", err)
	}
	if s, f, _ := h.rep.snapshot(); len(s)+len(f) != 0 {
		t.Fatalf("an interrupted job was completed: %v %v", s, f)
	}
}

func TestProgressThrottling(t *testing.T) {
	t.Parallel()
	release, reports := make(chan struct{}), make(chan longrun.Progress)
	h := setup(t, blockingJob(release, reports))
	done := make(chan error, 1)
	go func() { done <- h.p.Process(context.Background(), message(`{}`)) }()
	eventually(t, "tickers", func() bool { return h.clock.Waits() == 2 })

	// The first report is stored at once: describe shows the job started.
	reports <- longrun.Progress{Percent: 1}
	eventually(t, "first report stored", func() bool { return len(h.store.saved()) == 1 })
	for i := 2; i <= 50; i++ {
		reports <- longrun.Progress{Percent: float64(i)}
	}
	// Once the job takes this repeat, its report of 50 has completed, so the
	// flush below cannot see an older value.
	reports <- longrun.Progress{Percent: 50}
	if n := len(h.store.saved()); n != 1 {
		t.Fatalf("%d progress writes before the first interval, want only the first report's", n)
	}
	h.clock.Advance(progressEvery)
	eventually(t, "first interval flush", func() bool { return len(h.store.saved()) == 2 })
	reports <- longrun.Progress{Percent: 60, Message: "almost"}
	reports <- longrun.Progress{Percent: 70, Message: "nearly", UpdatedAt: time.Unix(1, 0)}
	close(release)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	saved := h.store.saved()
	if len(saved) != 3 || saved[0].Percent != 1 || saved[1].Percent != 50 || saved[1].UpdatedAt.IsZero() || saved[2].Percent != 70 || !saved[2].UpdatedAt.Equal(time.Unix(1, 0)) {
		t.Fatalf("progress writes %+v; want the first at once, the latest at the interval and once at the end", saved)
	}
}

func TestLateCompletionIsDone(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		job  longrun.Job
	}{
		{"success", jobReturning(`1`, nil)},
		{"failure", jobReturning("", errors.New("x"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, tt.job, quietTickers)
			h.stepSleeps(t, time.Minute) // a retry would be recorded, not hang
			gone := func(int) error { return longrun.Errorf(longrun.ETASKGONE, "TaskDoesNotExist") }
			h.rep.successErr, h.rep.failureErr = gone, gone
			if err := h.p.Process(context.Background(), message(`{}`)); err != nil {
				t.Fatalf("Process = %v; a late completion is done", err)
			}
			if s, f, _ := h.rep.snapshot(); len(s)+len(f) != 1 || len(h.slept()) != 0 {
				t.Fatalf("a gone task was retried: %v %v", s, f)
			}
			if !strings.Contains(h.log(), "late completion") {
				t.Fatalf("not logged: %s", h.log())
			}
		})
	}
}

func TestSendRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		failures   int // transient failures before success
		wantErr    bool
		wantSleeps []time.Duration
	}{
		{name: "first try", failures: 0},
		{name: "two transient failures", failures: 2, wantSleeps: []time.Duration{time.Second, 2 * time.Second}},
		{name: "gives up", failures: 99, wantErr: true, wantSleeps: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, jobReturning(`1`, nil), quietTickers)
			h.stepSleeps(t, time.Minute)
			h.rep.successErr = func(n int) error {
				if n <= tt.failures {
					return errors.New("sfn: ServiceUnavailable")
				}
				return nil
			}
			err := h.p.Process(context.Background(), message(`{}`))
			if (err != nil) != tt.wantErr || fmt.Sprint(h.slept()) != fmt.Sprint(tt.wantSleeps) {
				t.Fatalf("Process = %v, sleeps %v; want error %v, sleeps %v", err, h.slept(), tt.wantErr, tt.wantSleeps)
			}
			if tt.wantErr && !strings.Contains(err.Error(), "ex-1") {
				t.Fatalf("error %q lacks the execution id", err)
			}
		})
	}
}

// A message that waited in the queue past its task's end (the execution was
// stopped or timed out, or an earlier receive completed it) is heartbeated
// on receipt, and its job is not run at all.
func TestTaskGoneOnReceiptIsNotRun(t *testing.T) {
	t.Parallel()
	runs := 0
	h := setup(t, func(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
		runs++
		return json.RawMessage(`{}`), nil
	})
	h.rep.heartbeatErr = func(int) error { return longrun.Errorf(longrun.ETASKGONE, "TaskDoesNotExist") }
	if err := h.p.Process(context.Background(), message(`{}`)); err != nil {
		t.Fatalf("Process = %v, want nil: the message is done with", err)
	}
	successes, failures, heartbeats := h.rep.snapshot()
	if runs != 0 || heartbeats != 1 || len(successes)+len(failures) != 0 {
		t.Fatalf("runs %d, heartbeats %d, completions %v %v; want the job never run after one heartbeat", runs, heartbeats, successes, failures)
	}
}

// registryOf returns a registry whose default kind runs job.
func registryOf(job longrun.Job) *longrun.Registry {
	r := longrun.NewRegistry()
	r.Handle("test", job, longrun.JobOptions{})
	return r
}
