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
	timer         Timer
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
}

var (
	_ longrun.Orchestrator = (*Engine)(nil)
	_ longrun.TaskReporter = (*Engine)(nil)
)

func newEngine(cfg Config) *Engine {
	return &Engine{
		db: cfg.DB, clock: cfg.Clock, timer: cfg.Timer, log: cfg.Logger, rnd: cfg.Rand,
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
	return e.clock().UTC().Truncate(time.Millisecond)
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
	failures int                                         // failed commits of it alone
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

	b := &batch{e: e}
	for {
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
			due, stop = e.timer.Until(e.timers[0].at)
		}
		n := min(len(e.retry), limit)
		cmds := append(b.cmds[:0], e.retry[:n]...)
		e.retry = append(e.retry[:0], e.retry[n:]...)
		if len(cmds) == 0 {
			select {
			case <-ctx.Done():
				stop()
				return nil
			case c := <-e.cmds:
				cmds = append(cmds, c)
			case <-due:
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
		var ticks []*execution
		for len(e.timers) > 0 && !e.timers[0].at.After(now) && len(cmds)+len(ticks) < limit {
			t := heap.Pop(&e.timers).(timerEntry)
			if t.at.Equal(t.ex.armed) {
				t.ex.armed = time.Time{}
			}
			if t.ex.status == longrun.StatusRunning && !t.ex.ticked && e.execs[t.ex.arn] == t.ex && !now.Before(t.ex.parked) {
				t.ex.ticked = true
				ticks = append(ticks, t.ex)
			}
		}
		b.cmds = cmds
		// Only an internal change or a timer failing on its own is tried
		// again after a pause; a batch is split at once, and a caller's
		// change failing on its own is answered with the error.
		pause := len(cmds)+len(ticks) == 1 && (len(ticks) == 1 || cmds[0].reply == nil)
		if err := e.apply(ctx, b, now, ticks); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.log.ErrorContext(ctx, "local engine: commit failed", "error", err)
			if !pause {
				continue
			}
			// Give a failing disk a moment rather than spinning.
			wait, stopWait := e.timer.Until(e.now().Add(100 * time.Millisecond))
			select {
			case <-wait:
			case <-ctx.Done():
				stopWait()
				return nil
			}
		}
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

// apply runs one batch in one transaction and, once committed, replies,
// arms timers and starts the effects (invocations, events) it asks for.
func (e *Engine) apply(ctx context.Context, b *batch, now time.Time, ticks []*execution) error {
	b.begin(ctx, now)
	err := e.lookup(ctx, b)
	if err == nil {
		for i, c := range b.cmds {
			b.errs[i] = b.run(c)
		}
		for _, ex := range ticks {
			b.tick(ex)
		}
		err = b.err
	}
	if err == nil {
		err = e.db.Write(ctx, b.write)
	}
	if err != nil {
		e.rollback(b) // before the ticks are reset: it restores what they were when touched
		if len(b.cmds)+len(ticks) == 1 {
			for _, ex := range ticks {
				if ex.failures++; ex.failures >= maxAloneFailures {
					// Parked, not dropped: its timers are tried again after a
					// growing pause, so it resumes by itself once the disk
					// takes writes again (no restart needed).
					ex.parked = now.Add(parkDelay(ex.failures))
					e.log.ErrorContext(ctx, "local engine: execution parked after failed commits; retrying",
						"execution", ex.arn, "state", ex.state, "retry_at", ex.parked, "error", err)
				}
			}
		}
	}
	for _, ex := range ticks {
		ex.ticked = false
		e.arm(ex)
	}
	if err != nil {
		if len(b.cmds)+len(ticks) > 1 {
			e.isolating = true
			e.retry = append(e.retry, b.cmds...) // callers wait for their own outcome
			return err
		}
		for _, c := range b.cmds {
			if c.failures++; c.reply != nil {
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
		return err
	}
	if e.isolating && len(e.retry) == 0 {
		e.isolating = false
	}
	for _, ex := range b.touched {
		ex.failures, ex.parked = 0, time.Time{}
		if ex.created && ex.m.name == e.main && ex.parentARN == "" {
			e.running.Add(1)
		}
		ex.saved, ex.touched, ex.created = nil, false, false
		ex.events, ex.holes = ex.events[:0], nil
		e.arm(ex)
	}
	for i, c := range b.cmds {
		if c.reply != nil {
			c.reply <- b.errs[i]
		}
	}
	for _, ex := range b.effects {
		e.dispatch(ctx, ex)
	}
	for _, o := range b.outbox {
		e.deliverEvent(ctx, o)
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
	return nil
}

// lookup finds the status of the executions the batch starts or stops
// that are not in memory, so the transaction itself only writes.
func (e *Engine) lookup(ctx context.Context, b *batch) error {
	clear(b.known)
	var arns []string
	for _, c := range b.cmds {
		if (c.kind == cmdStart || c.kind == cmdStop) && e.execs[c.arn] == nil {
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
// not commit.
func (e *Engine) rollback(b *batch) {
	if len(b.touched) == 0 {
		return
	}
	for _, ex := range b.touched {
		if ex.created {
			delete(e.execs, ex.arn)
			continue
		}
		saved := ex.saved
		*ex = *saved
		e.execs[ex.arn] = ex
	}
	clear(e.tokens)
	for _, ex := range e.execs {
		if ex.phase == phaseToken {
			e.tokens[ex.token] = ex
		}
	}
	b.touched = b.touched[:0]
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
