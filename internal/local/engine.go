package local

import (
	"container/heap"
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/asl"
)

//go:embed migration/*.sql
var migrations embed.FS

// migrationSet names the engine's tables in schema_version.
const migrationSet = "local"

// maxBatch bounds the commands applied in one transaction, so one commit
// never holds the writer for long.
const maxBatch = 512

// maxHistory is Step Functions' limit of events per execution; an execution
// that reaches it fails (it would loop forever otherwise).
const maxHistory = 25000

// maxInflight bounds the Lambda invocations and fallback sends running at
// once.
const maxInflight = 256

// Engine runs executions durably. Create it with New, run it with Run; the
// Orchestrator and TaskReporter methods may be called from any goroutine.
type Engine struct {
	stmts         map[string]*sql.Stmt // batchQueries prepared on the writer, owned by Run
	lookupStmt    *sql.Stmt            // lookupSQL prepared on the readers, owned by Run
	db            DB
	clock         longrun.Clock
	log           *slog.Logger
	rnd           *mrand.Rand
	machines      map[string]*machine
	machinesByARN map[string]*machine
	main, deliver string
	fns           map[string]Function

	cmds    chan *command
	started chan struct{} // closed when Run begins
	stopped chan struct{} // closed when Run returns
	quit    chan struct{} // closed when Run's loop ends: internal commands are dropped from then on
	// workers are the goroutines Run starts (invokes, sends, status
	// events); Run waits for them before it returns, so nothing the engine
	// started outlives it (and the DB under it).
	workers sync.WaitGroup
	once    sync.Once
	sem     chan struct{}

	// Owned by Run's goroutine.
	execs     map[string]*execution
	tokens    map[string]*execution
	timers    timerHeap
	retry     []*command // commands to apply before new ones: of a failed batch, or results ready at once
	isolating bool       // a batch failed: apply one command or timer at a time

	// running counts the main machine's running executions, for
	// admission control (Running); written by Run's goroutine after commits.
	running atomic.Int64

	sigMu  sync.Mutex
	commit chan struct{} // closed after each commit; tests wait on it

	// onFinish, if set before Run, is called by Run's goroutine after an
	// execution's end commits (tests and benchmarks count with it).
	onFinish func(arn string, status longrun.Status)
	// afterCommit, if set, runs after each commit (crash tests stop the
	// engine at that instant).
	afterCommit atomic.Pointer[func()]
	// onStacked, if set, runs after commands are stepped on top of a batch
	// that is committing (tests make that batch's commit fail then).
	onStacked atomic.Pointer[func()]
}

var (
	_ longrun.Orchestrator = (*Engine)(nil)
	_ longrun.TaskReporter = (*Engine)(nil)
)

func newEngine(cfg Config) *Engine {
	return &Engine{
		db: cfg.DB, clock: cfg.Clock, log: cfg.Logger, rnd: cfg.Rand,
		machines: map[string]*machine{}, machinesByARN: map[string]*machine{},
		main: cfg.Main, deliver: cfg.Deliver, fns: cfg.Functions,
		cmds:    make(chan *command, 4*maxBatch),
		started: make(chan struct{}),
		stopped: make(chan struct{}),
		quit:    make(chan struct{}),
		sem:     make(chan struct{}, maxInflight),
		execs:   map[string]*execution{},
		tokens:  map[string]*execution{},
		commit:  make(chan struct{}),
	}
}

// now is the engine's time, at the millisecond precision it is stored
// with, so an execution reloaded after a crash sees exactly the same times.
func (e *Engine) now() time.Time {
	return e.clock.Now().UTC().Truncate(time.Millisecond)
}

// phase is what a running execution waits for in its current state.
type phase uint8

const (
	phaseNone     phase = iota
	phaseWait           // a Wait state, until wake
	phaseRetry          // a retry's backoff, until wake
	phaseToken          // SendTaskSuccess/Failure for token
	phaseInvoke         // a Lambda invocation (or a send after commit) to finish
	phaseBranches       // a Parallel or Map state's child executions to end
)

// execution is one execution in memory. Running executions are all in
// memory, owned by Run's goroutine; the row in local_executions is the
// durable copy, written in the same transaction as every change.
type execution struct {
	arn, name string
	m         *machine
	input     json.RawMessage
	start     time.Time
	deadline  time.Time // top-level TimeoutSeconds; zero for none
	seq       int64     // last history event id
	status    longrun.Status
	stop      time.Time
	output    json.RawMessage
	errName   string
	cause     string

	state        string
	stateInput   json.RawMessage
	entered      time.Time
	phase        phase
	wake         time.Time       // phaseWait, phaseRetry
	next         string          // phaseWait: the state after the wait ("" ends the execution)
	nextInput    json.RawMessage // phaseWait: its input
	task         *asl.Task       // the current or next attempt
	attempt      int             // counts attempts, so a stale result is recognised
	retries      []int
	token        string          // the current or next attempt's token (WaitForTaskToken)
	sent         bool            // the attempt's message is in the queue
	sendResult   json.RawMessage // a RequestResponse send's result, until applied
	taskDeadline time.Time
	heartbeat    time.Time
	vars         json.RawMessage // the workflow variables (asl.Context.Variables)
	// msg is the current attempt's task message, sent in the engine's
	// transaction (in memory only: after a restart the worker's Delete
	// removes it).
	msg taskMessage

	// A Parallel branch or Map iteration is a child execution (branch.go):
	// sub is the machine it runs, parentARN the execution whose state
	// started it, index its place in that state's results.
	sub       *asl.StateMachine
	parentARN string
	index     int
	// A Parallel or Map state's children: all it asked for (branches,
	// also kept for a retry's backoff), how many are started, their
	// outcomes so far (nil while one runs) and MaxConcurrency.
	branches []asl.Branch
	started  int
	results  []*asl.BranchResult
	maxConc  int
	parent   *execution // in memory only, linked at start and load
	starting bool       // in memory only: startMore is running for it

	// In memory only.
	events     []byte     // this batch's history events, a JSON array being built
	holes      []hole     // events in it known only in the transaction
	armed      time.Time  // the earliest timer in the heap for it
	saved      *execution // the state before the current batch, to roll back
	touched    bool
	created    bool
	ticked     bool
	dispatched int       // the attempt whose effect has been started
	failures   int       // failed commits of its timers alone
	parked     time.Time // after failed commits: its timers wait until then
}

// taskMessage is a task message the engine sent in its transaction: the
// answer to its token deletes it there too (txDeleter).
type taskMessage struct {
	q    txDeleter
	send *pendingSend // its id is set by the transaction that sends it, which commits before any that answers it
}

// firstEvent is the id of the first event of this batch.
func (ex *execution) firstEvent() int64 {
	if ex.saved != nil {
		return ex.saved.seq + 1
	}
	return 1
}

func (ex *execution) context() asl.Context {
	rc := 0
	for _, n := range ex.retries {
		rc += n
	}
	top := ex.root()
	return asl.Context{
		Execution:    asl.ExecutionContext{ID: top.arn, Name: top.name, Input: top.input, StartTime: top.start},
		StateMachine: asl.StateMachineContext{ID: ex.m.arn, Name: ex.m.name},
		State:        asl.StateContext{Name: ex.state, EnteredTime: ex.entered, RetryCount: rc},
		Task:         asl.TaskContext{Token: ex.token},
		Variables:    ex.vars,
	}
}

// due is when the execution's earliest timer fires; zero for none.
func (ex *execution) due() time.Time {
	var t time.Time
	consider := func(c time.Time) {
		if !c.IsZero() && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	consider(ex.deadline)
	switch ex.phase {
	case phaseWait, phaseRetry:
		consider(ex.wake)
	case phaseToken:
		consider(ex.taskDeadline)
		consider(ex.heartbeat)
	case phaseInvoke:
		consider(ex.taskDeadline)
	}
	return t
}

func executionARN(m *machine, name string) string {
	return "arn:aws:states:" + m.region + ":" + m.account + ":execution:" + m.name + ":" + name
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

type cmdKind uint8

const (
	cmdStart cmdKind = iota + 1
	cmdStop
	cmdSuccess
	cmdFailure
	cmdHeartbeat
	cmdResult     // an invocation or send finished
	cmdOutboxDone // a status-change event was accepted
)

// command is one change for Run's goroutine to apply.
type command struct {
	kind     cmdKind
	m        *machine
	arn      string
	name     string
	token    string
	data     json.RawMessage // start input, task output, invocation result
	errName  string
	cause    string
	attempt  int
	failed   bool
	id       int64
	with     func(ctx context.Context, tx *sql.Tx) error // cmdStart, cmdStop: more writes of its transaction
	reply    chan error                                  // nil for internal commands
	answered bool                                        // replied before its commit (Run's goroutine only)
	failures int                                         // failed commits of it alone
}

// waiting reports whether a caller still waits for c's outcome.
func (c *command) waiting() bool { return c.reply != nil && !c.answered }

// unanswered is cmds without those answered when stepped (a heartbeat that
// writes nothing): a failed commit is tried again without them.
func unanswered(cmds []*command) []*command {
	return slices.DeleteFunc(slices.Clone(cmds), func(c *command) bool { return c.answered })
}

var errStopped = longrun.Errorf(longrun.EUNAVAILABLE, "the local engine is not running")

// submit hands c to Run's goroutine and waits for its commit.
func (e *Engine) submit(ctx context.Context, c *command) error {
	c.reply = make(chan error, 1)
	select {
	case e.cmds <- c:
	case <-ctx.Done():
		return ctx.Err()
	case <-e.stopped:
		return errStopped
	}
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-e.stopped:
		// The command may have committed just before Run returned.
		select {
		case err := <-c.reply:
			return err
		default:
			return errStopped
		}
	}
}

// post hands an internal command to Run's goroutine; it is dropped if Run
// has returned (the durable state makes the next Run do the work again).
func (e *Engine) post(c *command) {
	select {
	case e.cmds <- c:
	case <-e.quit:
	}
}

// Run loads the running executions and applies changes until ctx ends. It
// returns nil when ctx ends and an error only if the executions cannot be
// loaded. Call it once per Engine.
func (e *Engine) Run(ctx context.Context) error {
	first := false
	e.once.Do(func() { first = true })
	if !first {
		return errors.New("local engine: Run called twice")
	}
	// In this order when Run returns: drop internal commands, wait for the
	// goroutines Run started (their ctx is Run's, so they end promptly),
	// then let submitters see the engine stopped.
	defer close(e.stopped)
	defer e.workers.Wait()
	defer close(e.quit)
	closeStmts, err := e.prepareStmts(ctx)
	if err != nil {
		return err
	}
	defer closeStmts()
	pending, outbox, err := e.load(ctx)
	if err != nil {
		return err
	}
	for _, ex := range e.execs {
		if ex.m.name == e.main && ex.parentARN == "" {
			e.running.Add(1)
		}
	}
	close(e.started)
	e.log.InfoContext(ctx, "local engine started", "running", len(e.execs), "outbox", len(outbox))
	for _, ex := range pending {
		e.dispatch(ctx, ex)
	}
	for _, o := range outbox {
		e.deliverEvent(ctx, o)
	}

	// Two batches take turns: while one's transaction commits (inflight),
	// the next is stepped on top of its uncommitted state, and handed to
	// the writer once the first has committed; if that one fails, the next
	// is undone with it (see docs/local-engine.md#pipelined-commits).
	batches := [2]*batch{{e: e, done: make(chan error, 1)}, {e: e, done: make(chan error, 1)}}
	var inflight *batch
	for {
		b := batches[0]
		if b == inflight {
			b = batches[1]
		}
		// After a failed commit the batch's work is retried one command
		// (or one timer) at a time, so one execution whose write fails
		// cannot hold up the others.
		limit := maxBatch
		if e.isolating {
			limit = 1
		}
		var due <-chan struct{}
		stop := func() {}
		if len(e.timers) > 0 {
			due, stop = e.clock.Until(e.timers[0].at)
		}
		n := min(len(e.retry), limit)
		cmds := append(b.cmds[:0], e.retry[:n]...)
		e.retry = append(e.retry[:0], e.retry[n:]...)
		if len(cmds) == 0 {
			var committing <-chan error
			if inflight != nil {
				committing = inflight.done
			}
			select {
			case <-ctx.Done():
				stop()
				if inflight != nil {
					e.finishWrite(ctx, inflight, <-inflight.done, nil)
				}
				return nil
			case c := <-e.cmds:
				cmds = append(cmds, c)
			case <-due:
			case err := <-committing:
				stop()
				b.cmds = cmds
				inflight, err = nil, e.finishWrite(ctx, inflight, err, nil)
				if err != nil && ctx.Err() != nil {
					return nil
				}
				continue
			}
		}
		stop()
	drain:
		for len(cmds) < limit {
			select {
			case c := <-e.cmds:
				cmds = append(cmds, c)
			default:
				break drain
			}
		}
		now := e.now()
		b.cmds = cmds
		b.begin(ctx, now)
		for len(e.timers) > 0 && !e.timers[0].at.After(now) && len(cmds)+len(b.ticks) < limit {
			t := heap.Pop(&e.timers).(timerEntry)
			if t.at.Equal(t.ex.armed) {
				t.ex.armed = time.Time{}
			}
			if t.ex.status == longrun.StatusRunning && !t.ex.ticked && e.execs[t.ex.arn] == t.ex && !now.Before(t.ex.parked) {
				t.ex.ticked = true
				b.ticks = append(b.ticks, t.ex)
			}
		}
		if len(cmds)+len(b.ticks) == 0 {
			continue // only timers of executions that moved on
		}
		e.step(ctx, b, inflight)
		if inflight != nil {
			err := e.finishWrite(ctx, inflight, e.stepWhileCommitting(ctx, b, inflight, limit), b)
			inflight = nil
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				continue // b was undone with it, and is queued again
			}
		}
		if b.err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.failed(ctx, b, b.err, nil)
			continue
		}
		if ctx.Err() != nil {
			return nil // not written: the durable state makes the next Run do it again
		}
		if len(b.ticks) == 0 && !slices.ContainsFunc(b.cmds, func(c *command) bool { return !c.answered }) {
			b.reset() // only heartbeats answered when stepped: nothing to write
			continue
		}
		b.seal()
		inflight = b
		e.workers.Go(func() { b.done <- e.db.Write(ctx, b.write) })
	}
}

// parkDelay is the pause before a change or an execution that failed to
// commit failures times on its own is tried again: growing from a second
// to a minute, so a full disk costs little and recovery is quick.
func parkDelay(failures int) time.Duration {
	return min(time.Second<<min(max(failures-maxAloneFailures, 0), 6), time.Minute)
}

// maxAloneFailures is how often a command or a timer that fails to commit
// on its own is tried at once before it is parked (see parkDelay).
const maxAloneFailures = 3

// step applies the batch's commands and timers in memory, on top of the
// state inflight leaves (not committed yet). An error that stops the batch
// is in b.err.
func (e *Engine) step(ctx context.Context, b *batch, inflight *batch) {
	if e.stepCmds(ctx, b, 0, inflight) {
		for _, ex := range b.ticks {
			b.tick(ex)
		}
	}
	for _, ex := range b.ticks {
		ex.ticked = false
		if !ex.touched {
			e.arm(ex) // a timer not due yet (a touched one is armed once its change commits)
		}
	}
}

// stepCmds applies b.cmds[from:]; false if the batch cannot be written.
func (e *Engine) stepCmds(ctx context.Context, b *batch, from int, inflight *batch) bool {
	if b.err != nil {
		return false
	}
	if err := e.lookup(ctx, b, b.cmds[from:], inflight); err != nil {
		b.abort(err)
		return false
	}
	for _, c := range b.cmds[from:] {
		b.errs = append(b.errs, b.run(c))
	}
	if f := e.onStacked.Load(); f != nil && inflight != nil {
		(*f)()
	}
	return b.err == nil
}

// stepWhileCommitting waits for inflight's transaction and returns its
// outcome; the commands that arrive meanwhile are stepped into b (up to
// limit), so b grows while the writer is busy rather than waiting for the
// next turn.
func (e *Engine) stepWhileCommitting(ctx context.Context, b *batch, inflight *batch, limit int) error {
	for {
		more := e.cmds
		if len(b.cmds) >= limit || b.err != nil {
			more = nil
		}
		select {
		case err := <-inflight.done:
			return err
		case c := <-more:
			from := len(b.cmds)
			b.cmds = append(b.cmds, c)
		drain:
			for len(b.cmds) < limit {
				select {
				case c := <-e.cmds:
					b.cmds = append(b.cmds, c)
				default:
					break drain
				}
			}
			e.stepCmds(ctx, b, from, inflight)
		}
	}
}

// finishWrite takes the outcome of b's transaction. Committed, it replies,
// arms timers and starts the effects b asks for. Failed, b is undone, and
// so is next, the batch stepped on top of it meanwhile (if any); both are
// queued again. It returns the commit's error.
func (e *Engine) finishWrite(ctx context.Context, b *batch, err error, next *batch) error {
	if err == nil {
		e.commitDone(ctx, b, next)
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	if next != nil {
		e.rollback(next) // first: it was stepped on top of b
		e.retry = slices.Concat(unanswered(next.cmds), e.retry)
	}
	e.failed(ctx, b, err, next)
	return err
}

// failed undoes a batch that did not commit (and next, already undone,
// stepped on top of it), and deals with its commands and timers: a batch of
// several is applied again one at a time (isolating), so the failure is
// one change's alone; a change or a timer failing alone is answered with
// the error, or tried again, and parked after maxAloneFailures.
func (e *Engine) failed(ctx context.Context, b *batch, err error, next *batch) {
	e.log.ErrorContext(ctx, "local engine: commit failed", "error", err, "changes", len(b.cmds), "timers", len(b.ticks))
	e.rollback(b)
	alone := len(b.cmds)+len(b.ticks) == 1
	if alone {
		for _, ex := range b.ticks {
			if ex.failures++; ex.failures >= maxAloneFailures {
				// Parked, not dropped: its timers are tried again after a
				// growing pause, so it resumes by itself once the disk
				// takes writes again (no restart needed).
				ex.parked = b.now.Add(parkDelay(ex.failures))
				e.log.ErrorContext(ctx, "local engine: execution parked after failed commits; retrying",
					"execution", ex.arn, "state", ex.state, "retry_at", ex.parked, "error", err)
			}
		}
	}
	e.resume(ctx, b)
	if next != nil {
		e.resume(ctx, next)
		next.reset()
	}
	// Only an internal change or a timer failing on its own is tried
	// again after a pause; a batch is split at once, and a caller's
	// change failing on its own is answered with the error.
	pause := alone && (len(b.ticks) == 1 || b.cmds[0].reply == nil)
	defer b.reset()
	if !alone {
		e.isolating = true
		e.retry = slices.Concat(unanswered(b.cmds), e.retry) // callers wait for their own outcome
		return
	}
	for _, c := range b.cmds {
		if c.answered {
			continue // answered when stepped, with nothing to write: nothing to retry
		}
		if c.failures++; c.waiting() {
			c.reply <- fmt.Errorf("local engine commit: %w", err)
		} else if c.failures < maxAloneFailures {
			e.retry = append(e.retry, c)
		} else {
			// An internal change (an invocation's result, a delivered
			// status event) is parked too, and posted again later.
			delay := parkDelay(c.failures)
			e.log.ErrorContext(ctx, "local engine: change parked after failed commits; retrying",
				"execution", c.arn, "retry_in", delay, "error", err)
			e.workers.Go(func() {
				if e.sleep(ctx, delay) == nil {
					e.post(c)
				}
			})
		}
	}
	if pause {
		// Give a failing disk a moment rather than spinning.
		_ = e.sleep(ctx, 100*time.Millisecond) // an error is ctx's: Run sees it
	}
}

// commitDone replies to b's callers, arms its timers and starts the effects
// (invocations, events) it asks for, now that b has committed. An execution
// that next (the batch being stepped, not committed) changed already is
// left to next: its timers and effects are next's to start.
func (e *Engine) commitDone(ctx context.Context, b *batch, next *batch) {
	if e.isolating && len(e.retry) == 0 {
		e.isolating = false
	}
	for i, ex := range b.touched {
		ex.failures, ex.parked = 0, time.Time{}
		if b.rows[i].created && ex.m.name == e.main && ex.parentARN == "" {
			e.running.Add(1)
		}
		if !ex.touched {
			e.arm(ex)
		}
	}
	for _, p := range b.sends {
		// A RequestResponse send's result is known only now; the batch
		// being stepped may have snapshot the execution already.
		if !p.wait {
			p.setResult(p.ex)
			if p.ex.touched {
				p.setResult(p.ex.saved)
			}
		}
	}
	for i, c := range b.cmds {
		if c.waiting() {
			c.reply <- b.errs[i]
		}
	}
	// After ctx ends nothing more is started: the next Run starts it again.
	if ctx.Err() == nil {
		for _, ex := range b.effects {
			if ex.touched && next != nil {
				next.effects = append(next.effects, ex)
				continue
			}
			e.dispatch(ctx, ex)
		}
		for _, o := range b.outbox {
			e.deliverEvent(ctx, o)
		}
	}
	for _, t := range b.logs {
		e.log.LogAttrs(ctx, slog.LevelInfo, "transition",
			slog.String("execution_id", t.ex), slog.String("machine", t.machine),
			slog.String("from", t.from), slog.String("to", t.to), slog.String("status", string(t.status)))
	}
	for _, ex := range b.finished {
		if ex.m.name == e.main && ex.parentARN == "" { // Map items and Parallel branches are not admitted executions
			e.running.Add(-1)
		}
		if e.onFinish != nil && ex.parentARN == "" {
			e.onFinish(ex.arn, ex.status)
		}
		// The timer heap may hold the execution until its timers pass;
		// what it no longer needs is only on disk from now on.
		ex.input, ex.stateInput, ex.nextInput, ex.output, ex.task, ex.retries, ex.vars = nil, nil, nil, nil, nil, nil, nil
		ex.events = nil
	}
	e.signalCommit()
	b.reset()
	if f := e.afterCommit.Load(); f != nil {
		(*f)()
	}
}

// lookup finds the status of the executions cmds start or stop that are
// not in memory, so the transaction itself only writes. One that inflight
// or b ended is not on disk as ended yet: its status is theirs.
func (e *Engine) lookup(ctx context.Context, b *batch, cmds []*command, inflight *batch) error {
	var arns []string
	var ended map[string]longrun.Status
	for _, c := range cmds {
		if (c.kind == cmdStart || c.kind == cmdStop) && e.execs[c.arn] == nil {
			if ended == nil {
				ended = map[string]longrun.Status{}
				for _, ex := range b.finished {
					ended[ex.arn] = ex.status
				}
				if inflight != nil {
					for _, ex := range inflight.finished {
						ended[ex.arn] = ex.status
					}
				}
			}
			if s, ok := ended[c.arn]; ok {
				b.known[c.arn] = string(s)
				continue
			}
			arns = append(arns, c.arn)
		}
	}
	if len(arns) == 0 {
		return nil
	}
	find := func(stmt *sql.Stmt) error {
		for _, arn := range arns {
			var status string
			switch err := stmt.QueryRowContext(ctx, arn).Scan(&status); {
			case err == nil:
				b.known[arn] = status
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("look up execution %s: %w", arn, err)
			}
		}
		return nil
	}
	if e.lookupStmt != nil {
		// Each arn on its own snapshot: what one finds does not depend on another.
		return find(e.lookupStmt)
	}
	return e.db.Read(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, lookupSQL)
		if err != nil {
			return fmt.Errorf("prepare execution lookup: %w", err)
		}
		defer stmt.Close()
		return find(stmt)
	})
}

// rollback undoes the in-memory changes of a batch whose transaction did
// not commit (or that was stepped on top of one that did not). What the
// engine keeps about its own work in memory stays: which timer is in the
// heap, which attempt's effect has started, the failures and parking.
func (e *Engine) rollback(b *batch) {
	b.seal()
	if len(b.touched) == 0 {
		return
	}
	for i, ex := range b.touched {
		if b.rows[i].created {
			delete(e.execs, ex.arn)
			continue
		}
		keep := *ex
		*ex = *b.saved[i]
		ex.armed, ex.ticked, ex.dispatched, ex.failures, ex.parked, ex.starting =
			keep.armed, keep.ticked, keep.dispatched, keep.failures, keep.parked, keep.starting
		e.execs[ex.arn] = ex
	}
	clear(e.tokens)
	for _, ex := range e.execs {
		if ex.phase == phaseToken {
			e.tokens[ex.token] = ex
		}
	}
}

// resume arms the timers of b's executions after a rollback and starts the
// effect their restored (committed) state waits for, if not started yet.
func (e *Engine) resume(ctx context.Context, b *batch) {
	for _, list := range [][]*execution{b.touched, b.ticks} {
		for _, ex := range list {
			if e.execs[ex.arn] != ex {
				continue
			}
			e.arm(ex)
			if ctx.Err() == nil {
				e.dispatch(ctx, ex)
			}
		}
	}
}

func (e *Engine) signalCommit() {
	e.sigMu.Lock()
	close(e.commit)
	e.commit = make(chan struct{})
	e.sigMu.Unlock()
}

// committed returns a channel closed at the next commit.
func (e *Engine) committed() <-chan struct{} {
	e.sigMu.Lock()
	defer e.sigMu.Unlock()
	return e.commit
}

// arm makes sure the execution's earliest timer is in the heap.
func (e *Engine) arm(ex *execution) {
	if ex.status != longrun.StatusRunning {
		return
	}
	due := ex.due()
	if !due.IsZero() && due.Before(ex.parked) {
		due = ex.parked
	}
	if due.IsZero() || (!ex.armed.IsZero() && !due.Before(ex.armed)) {
		return
	}
	heap.Push(&e.timers, timerEntry{at: due, ex: ex})
	ex.armed = due
}

type timerEntry struct {
	at time.Time
	ex *execution
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = timerEntry{}
	*h = old[:n-1]
	return x
}

// writePreparer is a DB that prepares statements on its writer once
// (sqlite.DB.PrepareWrite); without it each transaction prepares its own.
type writePreparer interface {
	PrepareWrite(ctx context.Context, query string) (*sql.Stmt, error)
}

// readPreparer is a DB that prepares a statement on its readers, to run
// outside a transaction (sqlite.DB.PrepareRead).
type readPreparer interface {
	PrepareRead(ctx context.Context, query string) (*sql.Stmt, error)
}

// lookupSQL is lookup's query.
const lookupSQL = `SELECT status FROM local_executions WHERE arn = ?`

// prepareStmts prepares the batches' statements on the writer, and
// lookup's on the readers; close closes them, when Run returns.
func (e *Engine) prepareStmts(ctx context.Context) (closeAll func(), err error) {
	stmts := make(map[string]*sql.Stmt, len(batchQueries))
	closeAll = func() {
		for _, st := range stmts {
			_ = st.Close() // nothing uses them any more: an error changes nothing
		}
		if e.lookupStmt != nil {
			_ = e.lookupStmt.Close() // likewise
		}
	}
	if p, ok := e.db.(readPreparer); ok {
		if e.lookupStmt, err = p.PrepareRead(ctx, lookupSQL); err != nil {
			return nil, fmt.Errorf("local engine: %w", err)
		}
	}
	p, ok := e.db.(writePreparer)
	if !ok {
		return closeAll, nil
	}
	for _, q := range batchQueries {
		st, err := p.PrepareWrite(ctx, q)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("local engine: %w", err)
		}
		stmts[q] = st
	}
	e.stmts = stmts
	return closeAll, nil
}
