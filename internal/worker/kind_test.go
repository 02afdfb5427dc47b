package worker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	longrun "github.com/longrun/longrun"
)

// attemptLog records the JobInfo of each run of a job.
type attemptLog struct {
	mu    sync.Mutex
	infos []longrun.JobInfo
}

func (l *attemptLog) add(ctx context.Context) int {
	info, _ := longrun.JobInfoFromContext(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.infos = append(l.infos, info)
	return len(l.infos)
}

func (l *attemptLog) attempts() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var a []int
	for _, i := range l.infos {
		a = append(a, i.Attempt)
	}
	return a
}

// failingTimes fails its first n runs with err, then succeeds.
func failingTimes(n int, err error, l *attemptLog) longrun.Job {
	return func(ctx context.Context, _ json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
		if l.add(ctx) <= n {
			return nil, err
		}
		return json.RawMessage(`{"ok":true}`), nil
	}
}

func withJobs(reg *longrun.Registry) func(*Config) { return func(c *Config) { c.Jobs = reg } }

func TestRetries(t *testing.T) {
	t.Parallel()
	policy := longrun.RetryPolicy{MaxAttempts: 3, Backoff: 2 * time.Second, MaxBackoff: 3 * time.Second}
	boom := errors.New("the disk is full")
	tests := []struct {
		name         string
		fails        int
		err          error
		receives     int // how many times the message was received, this time included
		wantAttempts []int
		wantSleeps   []time.Duration
		wantFailure  string // error name, "" for success
	}{
		{name: "succeeds on the third attempt", fails: 2, err: boom, receives: 1, wantAttempts: []int{1, 2, 3}, wantSleeps: []time.Duration{2 * time.Second, 3 * time.Second}},
		{name: "attempts used up: the last error", fails: 5, err: boom, receives: 1, wantAttempts: []int{1, 2, 3}, wantSleeps: []time.Duration{2 * time.Second, 3 * time.Second}, wantFailure: longrun.ErrNameJobFailed},
		{name: "a panic is retried", fails: 1, err: nil, receives: 1, wantAttempts: []int{1, 2}, wantSleeps: []time.Duration{2 * time.Second}},
		{name: "permanent: no retry", fails: 1, err: longrun.Permanent(&longrun.JobError{Name: "Export.NoBucket", Cause: "bucket gone"}), receives: 1, wantAttempts: []int{1}, wantFailure: "Export.NoBucket"},
		{name: "redelivered after a crash: counts on", fails: 5, err: boom, receives: 2, wantAttempts: []int{2, 3}, wantSleeps: []time.Duration{3 * time.Second}, wantFailure: longrun.ErrNameJobFailed},
		{name: "redelivered past the attempts: runs once more", fails: 0, receives: 4, wantAttempts: []int{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := &attemptLog{}
			job := failingTimes(tt.fails, tt.err, l)
			if tt.err == nil && tt.fails > 0 {
				job = func(ctx context.Context, _ json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
					if l.add(ctx) <= tt.fails {
						panic("nil map")
					}
					return json.RawMessage(`{"ok":true}`), nil
				}
			}
			reg := longrun.NewRegistry()
			reg.Handle("export", job, longrun.JobOptions{Retry: policy})
			h := setup(t, jobReturning(`{}`, nil), withJobs(reg), quietTickers)
			h.stepSleeps(t, time.Minute)
			msg := message(`{}`)
			msg.Job = "export"
			if err := h.p.process(context.Background(), msg, tt.receives); err != nil {
				t.Fatalf("process: %v", err)
			}
			if got := l.attempts(); !slices.Equal(got, tt.wantAttempts) {
				t.Errorf("attempts = %v, want %v", got, tt.wantAttempts)
			}
			if got := h.slept(); !slices.Equal(got, tt.wantSleeps) {
				t.Errorf("backoffs = %v, want %v", got, tt.wantSleeps)
			}
			successes, failures, _ := h.rep.snapshot()
			if tt.wantFailure == "" {
				if len(successes) != 1 || len(failures) != 0 {
					t.Fatalf("successes %v failures %v, want one success", successes, failures)
				}
				return
			}
			if len(failures) != 1 || len(successes) != 0 || failures[0].name != tt.wantFailure {
				t.Fatalf("failures %+v successes %v, want one %s", failures, successes, tt.wantFailure)
			}
		})
	}
}

func TestRetryStopsWhenTheTaskEnds(t *testing.T) {
	t.Parallel()
	l := &attemptLog{}
	reg := longrun.NewRegistry()
	reg.Handle("export", failingTimes(9, errors.New("flaky"), l), longrun.JobOptions{Retry: longrun.RetryPolicy{MaxAttempts: 5}})
	ctx, cancel := context.WithCancel(context.Background())
	h := setup(t, jobReturning(`{}`, nil), withJobs(reg), quietTickers)
	// The backoff is interrupted: a shutdown during the wait.
	h.onWait(t, time.Minute, func(time.Time) { cancel() })
	if err := h.p.process(ctx, message(`{}`), 1); err == nil {
		t.Fatal("process = nil, want the message left for a retry")
	}
	if got := l.attempts(); !slices.Equal(got, []int{1}) {
		t.Fatalf("attempts = %v, want [1]: no run after the wait was interrupted", got)
	}
	if s, f, _ := h.rep.snapshot(); len(s)+len(f) != 0 {
		t.Fatalf("completed the task of an interrupted job: %v %v", s, f)
	}
}

func TestDispatchByKindWithJobInfo(t *testing.T) {
	t.Parallel()
	l := &attemptLog{}
	named := func(name string) longrun.Job {
		return func(ctx context.Context, _ json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
			l.add(ctx)
			return json.Marshal(map[string]string{"ran": name})
		}
	}
	reg := longrun.NewRegistry()
	reg.Handle("export", named("export"), longrun.JobOptions{})
	reg.Handle("transcode", named("transcode"), longrun.JobOptions{})
	tests := []struct{ job, wantOutput, wantFailure string }{
		{job: "", wantOutput: `{"ran":"export"}`},
		{job: "transcode", wantOutput: `{"ran":"transcode"}`},
		{job: "resize", wantFailure: longrun.ErrNameUnknownKind},
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			t.Parallel()
			h := setup(t, jobReturning(`{}`, nil), withJobs(reg))
			msg := message(`{}`)
			msg.Job = tt.job
			if err := h.p.Process(context.Background(), msg); err != nil {
				t.Fatalf("Process: %v", err)
			}
			successes, failures, _ := h.rep.snapshot()
			if tt.wantFailure != "" {
				if len(failures) != 1 || failures[0].name != tt.wantFailure || !strings.Contains(failures[0].cause, `["export" "transcode"]`) {
					t.Fatalf("failures %+v, want %s naming the kinds the worker has", failures, tt.wantFailure)
				}
				return
			}
			if len(successes) != 1 || successes[0].output != tt.wantOutput {
				t.Fatalf("successes %v failures %v, want %s", successes, failures, tt.wantOutput)
			}
		})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, info := range l.infos {
		m := message(`{}`)
		if info.ExecutionID != m.ExecutionID || info.ExecutionARN != m.ExecutionARN || info.Attempt != 1 || (info.Kind != "export" && info.Kind != "transcode") {
			t.Errorf("JobInfo = %+v, want the message's ids, attempt 1 and the kind's name", info)
		}
	}
}

// The Lambda worker counts attempts on from SQS's ApproximateReceiveCount,
// and the poller from the queue's receive count.
func TestAttemptFromReceiveCount(t *testing.T) {
	t.Parallel()
	l := &attemptLog{}
	reg := longrun.NewRegistry()
	reg.Handle("export", failingTimes(0, nil, l), longrun.JobOptions{})
	h := setup(t, jobReturning(`{}`, nil), withJobs(reg))
	body, _ := json.Marshal(message(`{}`))
	for _, count := range []string{"3", ""} {
		res, err := SQSHandler(h.p)(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{
			MessageId: "m-" + count, Body: string(body), Attributes: map[string]string{"ApproximateReceiveCount": count},
		}}})
		if err != nil || len(res.BatchItemFailures) != 0 {
			t.Fatalf("SQSHandler = %+v, %v", res, err)
		}
	}
	if got := l.attempts(); !slices.Equal(got, []int{3, 1}) {
		t.Fatalf("attempts = %v, want [3 1]: the third receive is attempt 3; no count is the first", got)
	}
}
