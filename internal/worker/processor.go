// Package worker runs jobs from task tokens: it takes the task messages the
// state machine's Work state puts on the jobs queue, runs the user's
// longrun.Job with heartbeats, progress and cancellation, and completes the
// token with SendTaskSuccess or SendTaskFailure. Processor is the core;
// SQSHandler serves it to the Lambda worker and Poller to `longrun worker`
// (jobs of hours) and to `longrun dev`.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/jsonscan"
)

// Config configures a Processor. Tasks, Executions and Jobs are required.
type Config struct {
	Tasks      longrun.TaskReporter
	Executions longrun.ExecutionStore // where progress goes
	Jobs       *longrun.Registry      // the job of a message's kind runs it

	// HeartbeatInterval is how often a running job's task is heartbeated
	// (the first heartbeat is sent on receipt, before the job starts). A
	// heartbeat's answer is how a worker learns that its task is gone (the
	// execution was stopped or timed out) and cancels the job; a third of
	// the lease (longrun.Limits.HeartbeatSeconds) is usual. 0 means
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// ProgressInterval bounds how often progress is written to the store;
	// 0 means DefaultProgressInterval.
	ProgressInterval time.Duration

	// SendAttempts is how many times a transient SendTask* failure is tried
	// before Process gives up; 0 means DefaultSendAttempts. The backoff
	// starts at SendBackoff (0 means one second) and doubles.
	SendAttempts int
	SendBackoff  time.Duration

	// Clock is what heartbeats, progress flushes, job limits and backoffs
	// wait on; nil means longrun.SystemClock.
	Clock  longrun.Clock
	Logger *slog.Logger // nil discards
}

// Defaults for Config.
const (
	DefaultHeartbeatInterval = 20 * time.Second
	DefaultProgressInterval  = 5 * time.Second
	DefaultSendAttempts      = 4
)

// Processor runs one task message at a time per call; it is safe for
// concurrent use.
type Processor struct {
	cfg Config
	log *slog.Logger
}

// NewProcessor returns a Processor with cfg's defaults filled in.
func NewProcessor(cfg Config) *Processor {
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.SendAttempts <= 0 {
		cfg.SendAttempts = DefaultSendAttempts
	}
	if cfg.SendBackoff <= 0 {
		cfg.SendBackoff = time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = longrun.SystemClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Processor{cfg: cfg, log: log}
}

// ErrNameOutOfTime is the error a job gets when it outlives the Lambda
// worker's timeout (see SQSHandler).
const ErrNameOutOfTime = "Job.OutOfTime"

// errOutOfTime is the cancel cause of a job that reached the end of the time
// its Lambda invocation has.
var errOutOfTime = errors.New("the Lambda invocation's deadline is near")

// errJobTimeout is the cancel cause of a job that ran past its own limit.
var errJobTimeout = errors.New("the job ran past its time limit")

// jobLimit is how long msg's job may run from receipt: its limits'
// TimeoutSeconds, or 0 (no limit of the worker's own) for a message
// without limits.
func jobLimit(msg longrun.TaskMessage) time.Duration {
	if msg.Limits == nil || msg.Limits.TimeoutSeconds <= 0 {
		return 0
	}
	return time.Duration(msg.Limits.TimeoutSeconds) * time.Second
}

// enforceLimit cancels the job with errJobTimeout once timeUp is closed,
// unless the job is done first.
func (p *Processor) enforceLimit(ctx context.Context, done, timeUp <-chan struct{}, cancel context.CancelCauseFunc) {
	select {
	case <-timeUp:
		cancel(errJobTimeout)
	case <-done:
	case <-ctx.Done():
	}
}

// errTaskGone is the cancel cause of a job whose task is no longer valid.
var errTaskGone = errors.New("the task is gone: the execution was stopped or its task timed out")

// Process runs the job of msg and completes its task token. It returns nil
// when the message is done with, even if the job failed (that failure is
// reported to the orchestrator) or the task was already gone. It returns an
// error when the message should be processed again: ctx ended before the job
// did (a shutdown), or reporting the outcome kept failing.
func (p *Processor) Process(ctx context.Context, msg longrun.TaskMessage) error {
	return p.process(ctx, msg, 1)
}

// process is Process of a message received the receives-th time: each earlier
// receive ran the job at least once (a worker crashed or lost the message), so
// attempts count on from there.
func (p *Processor) process(ctx context.Context, msg longrun.TaskMessage, receives int) error {
	log := p.log.With("execution_id", msg.ExecutionID)
	// Heartbeat at once, before the job starts: a message can wait in the
	// queue for any time, and a copy whose task is already settled (its
	// execution was stopped or timed out, or an earlier receive completed
	// it) must not run the job again. docs/state-machine.md, "Liveness".
	switch err := p.cfg.Tasks.SendTaskHeartbeat(ctx, msg.TaskToken); {
	case longrun.IsCode(err, longrun.ETASKGONE):
		log.InfoContext(ctx, "task gone before the job started: not running it", "err", err)
		return nil
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("first heartbeat of execution %s: %w", msg.ExecutionID, ctx.Err())
	case err != nil:
		// Not fatal: the job runs; its periodic heartbeats try again.
		log.WarnContext(ctx, "first heartbeat failed", "err", err)
	}
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	prog := newProgress()
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); p.heartbeat(jobCtx, done, cancel, msg.TaskToken, log) }()
	go func() { defer wg.Done(); p.flushProgress(jobCtx, done, msg.ExecutionID, prog, log) }()
	limit := jobLimit(msg)
	if limit > 0 {
		// The job's own limit counts from receipt, on the worker's clock:
		// the Work state's TimeoutSeconds started at the send and is only a
		// backstop sized for queue wait plus this (longrun.Backstop).
		timeUp, stop := p.cfg.Clock.Until(p.cfg.Clock.Now().Add(limit))
		defer stop()
		wg.Go(func() { p.enforceLimit(jobCtx, done, timeUp, cancel) })
	}

	output, jobErr := p.run(jobCtx, msg, max(receives, 1), prog.report(p.cfg.Clock), log)
	close(done)
	wg.Wait()

	if errors.Is(context.Cause(jobCtx), errTaskGone) {
		// Stopped or timed out: the orchestrator already knows the outcome.
		log.InfoContext(ctx, "job cancelled: task gone", "job_err", errString(jobErr))
		return nil
	}
	// A job that returned its output as its time ran out finished in time:
	// only a job cut off by the limit (an error, no output) ends Job.Timeout.
	if errors.Is(context.Cause(jobCtx), errJobTimeout) && ctx.Err() == nil && (jobErr != nil || output == nil) {
		log.WarnContext(ctx, "job ran past its time limit", "limit", limit, "job_err", errString(jobErr))
		p.flushFinal(ctx, msg.ExecutionID, prog, log)
		return p.complete(ctx, msg, nil, &longrun.JobError{
			Name: longrun.ErrNameJobTimeout,
			Cause: fmt.Sprintf("the job of kind %q ran past its time limit of %s (the kind's Timeout, or the deployment's JobTimeoutSeconds), counted from when the worker took it, retries included; the time it waited in the queue does not count",
				msg.Job, limit),
		}, log)
	}
	if errors.Is(context.Cause(ctx), errOutOfTime) {
		// The Lambda worker is about to be killed. A retry would run out of
		// time again, so fail now with a reason instead of leaving the job
		// to run out of its lease and again on the next worker. The report
		// uses the margin left.
		log.WarnContext(ctx, "job ran out of the Lambda worker's time")
		return p.complete(context.WithoutCancel(ctx), msg, nil, &longrun.JobError{
			Name:  ErrNameOutOfTime,
			Cause: "the job did not finish within the Lambda worker's timeout; run jobs this long on `longrun worker` (no time limit)",
		}, log)
	}
	if ctx.Err() != nil {
		log.WarnContext(ctx, "job interrupted; the message will be retried", "err", ctx.Err())
		return fmt.Errorf("run job of execution %s: %w", msg.ExecutionID, ctx.Err())
	}
	p.flushFinal(ctx, msg.ExecutionID, prog, log)
	return p.complete(ctx, msg, output, jobErr, log)
}

// run calls the job of msg's kind, and again after a backoff while it fails
// and its kind's RetryPolicy allows, from attempt number first. The task's
// heartbeats go on through the backoff, so a retry keeps the same task.
func (p *Processor) run(ctx context.Context, msg longrun.TaskMessage, first int, report func(longrun.Progress), log *slog.Logger) (json.RawMessage, error) {
	kind, ok := p.cfg.Jobs.Lookup(msg.Job)
	if !ok {
		return nil, &longrun.JobError{Name: longrun.ErrNameUnknownKind, Cause: fmt.Sprintf(
			"this worker has no job of kind %q (it has %q): deploy the worker built with that kind registered", msg.Job, p.cfg.Jobs.Kinds())}
	}
	retry := kind.Options.Retry
	info := longrun.JobInfo{ExecutionID: msg.ExecutionID, ExecutionARN: msg.ExecutionARN, Kind: kind.Name}
	for info.Attempt = first; ; info.Attempt++ {
		out, err := p.runOnce(longrun.WithJobInfo(ctx, info), kind, msg.Input, report, log)
		if err == nil || ctx.Err() != nil || longrun.IsPermanent(err) || info.Attempt >= retry.Attempts() {
			if err != nil && info.Attempt > 1 {
				log.InfoContext(ctx, "job failed; no attempts left", "job", kind.Name, "attempt", info.Attempt, "max_attempts", retry.Attempts(), "err", err)
			}
			return out, err
		}
		wait := retry.Delay(info.Attempt)
		log.WarnContext(ctx, "job failed; retrying", "job", kind.Name, "attempt", info.Attempt, "max_attempts", retry.Attempts(), "backoff", wait, "err", err)
		if serr := longrun.SleepUntil(ctx, p.cfg.Clock, p.cfg.Clock.Now().Add(wait)); serr != nil {
			return out, err // stopped, timed out or shutting down: Process says which
		}
	}
}

// runOnce calls the job once, turning a panic into an error.
func (p *Processor) runOnce(ctx context.Context, kind *longrun.Kind, input json.RawMessage, report func(longrun.Progress), log *slog.Logger) (out json.RawMessage, err error) {
	defer func() {
		if v := recover(); v != nil {
			log.ErrorContext(ctx, "job panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = &panicError{value: v}
		}
	}()
	return kind.Job(ctx, input, report)
}

type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// complete reports the job's outcome with SendTaskSuccess or SendTaskFailure.
func (p *Processor) complete(ctx context.Context, msg longrun.TaskMessage, output json.RawMessage, jobErr error, log *slog.Logger) error {
	name, cause := failure(msg.Input, output, jobErr)
	if name == "" {
		if len(output) == 0 {
			output = json.RawMessage("null")
		}
		log.InfoContext(ctx, "job succeeded", "output_bytes", len(output))
		return p.send(ctx, msg.ExecutionID, "send task success", log, func() error {
			return p.cfg.Tasks.SendTaskSuccess(ctx, msg.TaskToken, output)
		})
	}
	log.InfoContext(ctx, "job failed", "error", name, "cause", cause)
	return p.send(ctx, msg.ExecutionID, "send task failure", log, func() error {
		return p.cfg.Tasks.SendTaskFailure(ctx, msg.TaskToken, name, cause)
	})
}

// failure returns the error name and cause that a job's result is reported
// with, or "" when it succeeded with valid output.
func failure(input, output json.RawMessage, err error) (name, cause string) {
	var (
		jobErr   *longrun.JobError
		panicErr *panicError
	)
	switch {
	case errors.As(err, &jobErr):
		name, cause = jobErr.Name, jobErr.Cause
		if name == "" {
			name = longrun.ErrNameJobFailed
		}
	case errors.As(err, &panicErr):
		name, cause = longrun.ErrNameJobPanic, fmt.Sprint(panicErr.value)
	case err != nil:
		name, cause = longrun.ErrNameJobFailed, err.Error()
	case len(output) > 0 && !jsonscan.Valid(output):
		name, cause = longrun.ErrNameBadOutput, fmt.Sprintf("the job returned output that is not JSON: %q", longrun.Truncate(string(output), 200))
	case len(input)+len(output)+longrun.StateOverheadBytes > longrun.MaxInputBytes:
		// statemachine/longrun.asl.json puts the output at $.result, beside
		// the input; Step Functions would refuse that state with
		// States.DataLimitExceeded, which no Catch sees: say it here, clearly.
		name, cause = longrun.ErrNameBadOutput, fmt.Sprintf("the job returned %d bytes of output; with its %d bytes of input that is over the 256 KiB (%d bytes) Step Functions state limit: store large results elsewhere and return a reference", len(output), len(input), longrun.MaxInputBytes)
	default:
		return "", ""
	}
	return longrun.Truncate(name, longrun.MaxErrorNameLength), longrun.Truncate(cause, longrun.MaxCauseLength)
}

// send calls a SendTask* call, retrying transient failures with backoff. A
// task that is gone means the outcome is already settled (a late or duplicate
// completion): that is logged and is not an error.
func (p *Processor) send(ctx context.Context, executionID, what string, log *slog.Logger, call func() error) error {
	backoff := p.cfg.SendBackoff
	var err error
	for attempt := 1; ; attempt++ {
		err = call()
		switch {
		case err == nil:
			return nil
		case longrun.IsCode(err, longrun.ETASKGONE):
			log.InfoContext(ctx, "late completion ignored: task already gone", "call", what, "err", err)
			return nil
		case attempt >= p.cfg.SendAttempts:
			return fmt.Errorf("%s for %s after %d attempts: %w", what, executionID, attempt, err)
		}
		log.WarnContext(ctx, "retrying", "call", what, "attempt", attempt, "err", err)
		if serr := longrun.SleepUntil(ctx, p.cfg.Clock, p.cfg.Clock.Now().Add(backoff)); serr != nil {
			return fmt.Errorf("%s for %s: %w (last error: %w)", what, executionID, serr, err)
		}
		backoff *= 2
	}
}

// heartbeat tells the orchestrator the job is alive every interval, and
// cancels the job when the answer is that its task is gone.
func (p *Processor) heartbeat(ctx context.Context, done <-chan struct{}, cancel context.CancelCauseFunc, token string, log *slog.Logger) {
	t := newTicker(p.cfg.Clock, p.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.Due():
			t.Next()
		}
		err := p.cfg.Tasks.SendTaskHeartbeat(ctx, token)
		switch {
		case longrun.IsCode(err, longrun.ETASKGONE):
			log.InfoContext(ctx, "heartbeat: task gone, cancelling the job", "err", err)
			cancel(errTaskGone)
			return
		case err != nil && ctx.Err() == nil:
			// One missed heartbeat is not fatal: liveness is the queue lease
			// (see Lease); the heartbeat only learns whether the task is gone.
			log.WarnContext(ctx, "heartbeat failed", "err", err)
		}
	}
}

// progress holds a job's latest progress report until it is flushed.
type progress struct {
	mu     sync.Mutex
	latest *longrun.Progress
	dirty  bool
	// first is closed by the first report: that one is stored at once, so
	// describe shows a job has started without waiting a ProgressInterval.
	first     chan struct{}
	firstOnce sync.Once
}

func newProgress() *progress { return &progress{first: make(chan struct{})} }

func (pr *progress) report(clock longrun.Clock) func(longrun.Progress) {
	return func(p longrun.Progress) {
		if p.UpdatedAt.IsZero() {
			p.UpdatedAt = clock.Now().UTC()
		}
		pr.mu.Lock()
		pr.latest, pr.dirty = &p, true
		pr.mu.Unlock()
		pr.firstOnce.Do(func() { close(pr.first) })
	}
}

// take returns the progress not yet flushed, if any.
func (pr *progress) take() (longrun.Progress, bool) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if !pr.dirty {
		return longrun.Progress{}, false
	}
	pr.dirty = false
	return *pr.latest, true
}

// flushProgress writes the latest progress at most every ProgressInterval,
// so a job reporting in a tight loop costs one store write per interval.
func (p *Processor) flushProgress(ctx context.Context, done <-chan struct{}, executionID string, prog *progress, log *slog.Logger) {
	t := newTicker(p.cfg.Clock, p.cfg.ProgressInterval)
	defer t.Stop()
	first := prog.first
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-first:
			first = nil // a nil channel never fires again
		case <-t.Due():
			t.Next()
		}
		if pr, ok := prog.take(); ok {
			p.setProgress(ctx, executionID, pr, log)
		}
	}
}

// flushFinal writes progress reported since the last flush.
func (p *Processor) flushFinal(ctx context.Context, executionID string, prog *progress, log *slog.Logger) {
	if pr, ok := prog.take(); ok {
		p.setProgress(ctx, executionID, pr, log)
	}
}

func (p *Processor) setProgress(ctx context.Context, executionID string, pr longrun.Progress, log *slog.Logger) {
	err := p.cfg.Executions.SetProgress(ctx, executionID, pr)
	switch {
	case longrun.IsCode(err, longrun.ENOTRUNNING):
		log.DebugContext(ctx, "progress after the execution ended ignored")
	case err != nil:
		// Progress is advisory; the job goes on.
		log.WarnContext(ctx, "store progress", "err", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
