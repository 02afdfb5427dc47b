package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	longrun "github.com/longrun/longrun"
)

// PollerConfig configures a Poller. Queue and Processor are required.
type PollerConfig struct {
	Queue longrun.Queue
	// Queues are more queues read alongside Queue, each in the same way
	// with its own Concurrency (`longrun worker` reads the jobs queue and
	// the long-jobs queue: docs/sam.md, "Long jobs").
	Queues    []longrun.Queue
	Processor *Processor

	// Concurrency is how many jobs run at once, per queue; 0 means 1. Per
	// queue, so a long poll on an idle queue never holds the slots another
	// queue's jobs need.
	Concurrency int
	// Visibility is the visibility timeout of a received message. While its
	// job runs it is extended by Visibility every Visibility/3, so a job may
	// run for hours while a crashed worker's message comes back within
	// Visibility. 0 means DefaultVisibility.
	Visibility time.Duration
	// Wait is the long-poll time of one Receive; 0 means DefaultWait.
	Wait time.Duration
	// DrainTimeout is how long running jobs may finish after ctx is
	// cancelled before they are cancelled too; 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// ErrorBackoff is the pause after a failed Receive; 0 means one second.
	ErrorBackoff time.Duration

	// Clock is what lease renewals, the drain and the pause after a failed
	// receive wait on; nil means longrun.SystemClock.
	Clock  longrun.Clock
	Logger *slog.Logger // nil discards
}

// Defaults for PollerConfig.
const (
	DefaultVisibility   = 5 * time.Minute
	DefaultWait         = 20 * time.Second // SQS's longest long poll
	DefaultDrainTimeout = 25 * time.Second // under ECS's default 30 s stop timeout, so cancelled jobs still release their messages
)

// Poller takes task messages from a queue and processes them: `longrun
// worker` for jobs longer than Lambda's 15 minutes, and the in-process worker
// of `longrun dev`.
type Poller struct {
	cfg PollerConfig
	log *slog.Logger
}

// NewPoller returns a Poller with cfg's defaults filled in.
func NewPoller(cfg PollerConfig) *Poller {
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if cfg.Visibility <= 0 {
		cfg.Visibility = DefaultVisibility
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.ErrorBackoff <= 0 {
		cfg.ErrorBackoff = time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = longrun.SystemClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Poller{cfg: cfg, log: log}
}

// Run receives and processes messages until ctx is cancelled (SIGTERM), then
// drains: it stops receiving, lets running jobs finish for up to
// DrainTimeout, then cancels them (their messages come back to the queue at
// once, for another worker) and returns when all have returned. It returns
// nil after a drain.
func (p *Poller) Run(ctx context.Context) error {
	// Jobs run on a context that outlives ctx by the drain timeout.
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()

	var running, loops sync.WaitGroup
	for _, q := range append([]longrun.Queue{p.cfg.Queue}, p.cfg.Queues...) {
		loops.Go(func() { p.receive(ctx, jobCtx, q, &running) })
	}
	loops.Wait()

	drained := make(chan struct{})
	go func() { running.Wait(); close(drained) }()
	select {
	case <-drained:
		return nil
	default:
	}
	p.log.InfoContext(ctx, "draining running jobs", "timeout", p.cfg.DrainTimeout)
	timeUp, stop := p.cfg.Clock.Until(p.cfg.Clock.Now().Add(p.cfg.DrainTimeout))
	defer stop()
	select {
	case <-drained:
	case <-timeUp:
		p.log.WarnContext(ctx, "drain timeout: cancelling running jobs")
		cancelJobs()
		<-drained
	}
	return nil
}

// receive takes messages from q, at most Concurrency running at once, until
// ctx ends; each runs on jobCtx, counted in running.
func (p *Poller) receive(ctx, jobCtx context.Context, q longrun.Queue, running *sync.WaitGroup) {
	slots := make(chan struct{}, p.cfg.Concurrency)
	for ctx.Err() == nil {
		n := acquire(ctx, slots)
		if n == 0 {
			return
		}
		msgs, err := q.Receive(ctx, n, p.cfg.Wait, p.cfg.Visibility)
		for range n - len(msgs) {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.ErrorContext(ctx, "receive task messages", "err", err)
			_ = longrun.SleepUntil(ctx, p.cfg.Clock, p.cfg.Clock.Now().Add(p.cfg.ErrorBackoff))
			continue
		}
		for _, m := range msgs {
			running.Go(func() {
				defer func() { <-slots }()
				p.handle(jobCtx, q, m)
			})
		}
	}
}

// maxReceive is the most messages one Receive may ask for (SQS's limit,
// which the SQLite queue enforces too).
const maxReceive = 10

// acquire takes one slot, waiting for it, and then other free slots up to
// maxReceive; it returns how many it took (0 when ctx ended first).
func acquire(ctx context.Context, slots chan struct{}) int {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < min(cap(slots), maxReceive) {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// handle processes one message, keeping it invisible while its job runs,
// and deletes it once it is done with.
func (p *Poller) handle(ctx context.Context, q longrun.Queue, m longrun.Message) {
	log := p.log.With("message_id", m.ID)
	extendCtx, stopExtending := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { holdLease(extendCtx, q, p.cfg.Clock, m.Receipt, p.cfg.Visibility, false, log) })
	done := p.cfg.Processor.handleBody(ctx, m.Body, m.ReceiveCount, log)
	stopExtending()
	wg.Wait()

	// Settle the message even when ctx was cancelled by the drain timeout.
	settle := context.WithoutCancel(ctx)
	if done {
		if err := q.Delete(settle, m.Receipt); err != nil {
			// The message comes back and its job runs again; the task token
			// is then gone, so the repeat ends at its first heartbeat.
			log.ErrorContext(ctx, "delete task message", "err", err)
		}
		return
	}
	if ctx.Err() != nil {
		// Interrupted by the drain: make it visible now so another worker
		// takes it without waiting out the visibility timeout.
		if err := q.ChangeVisibility(settle, m.Receipt, 0); err != nil {
			log.WarnContext(ctx, "release task message", "err", err)
		}
	}
}
