package local

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/asl"
	"github.com/longrun/longrun/internal/payload"
)

// batch is the work of one transaction: the commands and timers applied,
// what they changed, and what to do once it commits.
type batch struct {
	e   *Engine
	ctx context.Context
	tx  *sql.Tx
	now time.Time
	ms  int64
	err error // the batch cannot be written (an encoding error): it rolls back

	cmds    []*command
	errs    []error // per command
	ticks   []*execution
	touched []*execution
	// Filled by seal, when the batch is handed to its transaction: rows
	// are copies of the touched executions as the batch left them (what
	// the transaction writes, while Run's goroutine steps the next batch
	// on the executions themselves), saved their state before the batch
	// (nil for one it created), to roll back.
	sealed   bool
	rows     []*execution
	saved    []*execution
	rowOf    map[*execution]*execution
	done     chan error // the transaction's outcome
	finished []*execution
	effects  []*execution
	outbox   []outboxItem
	logs     []transition
	sends    []*pendingSend
	deletes  []int64           // delivered status events
	acks     []taskMessage     // task messages whose token this batch answered
	known    map[string]string // status of executions not in memory, looked up before the batch
	born     map[string]bool   // executions created in this batch
	withs    []*command        // starts and stops of this batch with writes of their own (StartWith, StopExecutionWith)
	scratch  []byte
	blobs    blobs // the chunks of large payloads (blob.go)

	history, outboxIns *sql.Stmt
}

type transition struct {
	ex, machine, from, to string
	status                longrun.Status
}

func (b *batch) begin(ctx context.Context, now time.Time) {
	b.reset()
	b.ctx, b.tx, b.now, b.ms = ctx, nil, now, now.UnixMilli()
	clear(b.errs)
	b.errs = b.errs[:0]
}

func (b *batch) reset() {
	b.err = nil
	clear(b.ticks)
	b.ticks = b.ticks[:0]
	clear(b.touched)
	b.touched = b.touched[:0]
	b.sealed = false
	clear(b.rows)
	b.rows = b.rows[:0]
	clear(b.saved)
	b.saved = b.saved[:0]
	clear(b.finished)
	b.finished = b.finished[:0]
	clear(b.effects)
	b.effects = b.effects[:0]
	b.outbox = b.outbox[:0]
	b.logs = b.logs[:0]
	clear(b.sends)
	b.sends = b.sends[:0]
	b.deletes = b.deletes[:0]
	clear(b.acks)
	b.acks = b.acks[:0]
	clear(b.withs)
	b.withs = b.withs[:0]
	if b.born == nil {
		b.known, b.born = map[string]string{}, map[string]bool{}
	}
	clear(b.born)
	clear(b.known)
	b.blobs.reset()
}

func (b *batch) closeStmts() {
	for _, s := range []*sql.Stmt{b.history, b.outboxIns} {
		if s != nil {
			_ = s.Close() // closing a statement of a finished transaction reports nothing useful
		}
	}
	b.history, b.outboxIns = nil, nil
	b.blobs.closeStmt()
}

// abort records an error that stops the batch; it rolls back.
func (b *batch) abort(err error) {
	if b.err == nil {
		b.err = err
	}
}

// seal hands the batch to its transaction: from here on write reads only
// what the batch owns (rows, copies of the executions as the batch left
// them), so Run's goroutine may step the next batch on the executions
// themselves meanwhile. The executions start afresh for that batch: its
// touch snapshots them as this batch leaves them.
func (b *batch) seal() {
	if b.sealed {
		return
	}
	b.sealed = true
	for _, ex := range b.touched {
		row := *ex
		b.rows = append(b.rows, &row)
		b.saved = append(b.saved, ex.saved)
		ex.saved, ex.touched, ex.created = nil, false, false
		ex.events, ex.holes = nil, nil // the row owns them now
	}
	if len(b.sends) > 0 {
		if b.rowOf == nil {
			b.rowOf = map[*execution]*execution{}
		}
		clear(b.rowOf)
		for i, ex := range b.touched {
			b.rowOf[ex] = b.rows[i]
		}
		for _, p := range b.sends {
			p.row = b.rowOf[p.ex]
		}
		clear(b.rowOf)
	}
}

// touch snapshots ex before its first change in this batch.
func (b *batch) touch(ex *execution) {
	if ex.touched {
		return
	}
	if !ex.created {
		cp := *ex
		ex.saved = &cp
		// results is changed in place (branchEnded): the copy keeps its own.
		ex.results = slices.Clone(ex.results)
	}
	ex.touched = true
	b.touched = append(b.touched, ex)
}

func (b *batch) run(c *command) error {
	switch c.kind {
	case cmdStart:
		return b.start(c)
	case cmdStop:
		return b.stop(c)
	case cmdSuccess:
		ex := b.e.tokens[c.token]
		if ex == nil {
			return errTaskGone
		}
		b.touch(ex)
		b.answered(ex)
		b.follow(ex, b.taskSucceeded(ex, c.data))
	case cmdFailure:
		ex := b.e.tokens[c.token]
		if ex == nil {
			return errTaskGone
		}
		b.touch(ex)
		b.answered(ex)
		b.follow(ex, b.taskFailed(ex, c.errName, c.cause))
	case cmdHeartbeat:
		ex := b.e.tokens[c.token]
		if ex == nil {
			return errTaskGone // after the commit: a stop stepped but not committed may be undone
		}
		if ex.task != nil && ex.task.HeartbeatSeconds > 0 {
			b.touch(ex)
			ex.heartbeat = b.now.Add(time.Duration(ex.task.HeartbeatSeconds) * time.Second)
		} else if c.waiting() {
			// Nothing to write: the task is alive, and saying so needs no
			// commit. The worker's heartbeat on receipt waited a whole
			// commit for it before its job could start, halving what the
			// in-process workers got through.
			c.answered = true
			c.reply <- nil
		}
	case cmdResult:
		b.result(c)
	case cmdOutboxDone:
		b.deletes = append(b.deletes, c.id)
	}
	return nil
}

// answered deletes the task message of ex's token, answered in this
// batch, in its transaction: its job is done with, and the worker's Delete
// then writes nothing (one write less per task).
func (b *batch) answered(ex *execution) {
	if ex.msg.q != nil {
		b.acks = append(b.acks, ex.msg)
		ex.msg = taskMessage{}
	}
}

var errTaskGone = longrun.Errorf(longrun.ETASKGONE,
	"the task token is not valid: the task timed out, its execution ended, or it was already completed")

func (b *batch) start(c *command) error {
	arn := c.arn
	if ex := b.e.execs[arn]; ex != nil {
		if bytes.Equal(ex.input, c.data) {
			return nil // Step Functions: same name, same input, still running
		}
		return longrun.Errorf(longrun.EDUPLICATE, "execution %s is running with a different input", arn)
	}
	if b.born[arn] || b.known[arn] != "" {
		return longrun.Errorf(longrun.EDUPLICATE, "execution %s already exists", arn)
	}
	b.born[arn] = true
	if c.with != nil {
		b.withs = append(b.withs, c)
	}
	ex := &execution{
		arn: arn, name: c.name, m: c.m, input: c.data, start: b.now, status: longrun.StatusRunning, created: true,
	}
	if s := c.m.sm.TimeoutSeconds(); s > 0 {
		ex.deadline = b.now.Add(time.Duration(s) * time.Second)
	}
	b.e.execs[arn] = ex
	b.touch(ex)
	b.event(ex, "ExecutionStarted", "", inputDetail(ex.input))
	b.statusEvent(ex)
	b.logTransition(ex, "", c.m.sm.StartAt())
	b.follow(ex, b.enter(ex, c.m.sm.StartAt(), ex.input))
	return nil
}

func (b *batch) stop(c *command) error {
	ex := b.e.execs[c.arn]
	if ex == nil {
		status := b.known[c.arn]
		if b.born[c.arn] {
			status = "in this batch"
		}
		if status == "" {
			return longrun.Errorf(longrun.ENOTFOUND, "execution %s does not exist", c.arn)
		}
		return longrun.Errorf(longrun.ENOTRUNNING, "execution %s already ended %s", c.arn, status)
	}
	if c.with != nil {
		b.withs = append(b.withs, c)
	}
	b.touch(ex)
	b.finish(ex, longrun.StatusAborted, nil, c.errName, c.cause)
	return nil
}

// result applies the outcome of an invocation or a send made after commit.
func (b *batch) result(c *command) {
	ex := b.e.execs[c.arn]
	if ex == nil || ex.attempt != c.attempt {
		return // the execution or the attempt ended meanwhile (timeout, stop)
	}
	switch {
	case ex.phase == phaseInvoke:
		b.touch(ex)
		if c.failed {
			b.follow(ex, b.taskFailed(ex, c.errName, c.cause))
		} else {
			b.follow(ex, b.taskSucceeded(ex, c.data))
		}
	case ex.phase == phaseToken && !ex.sent:
		b.touch(ex)
		ex.sent = true
		b.event(ex, "TaskSubmitted", ex.state, outputDetail(c.data))
	}
}

// tick applies the timers of ex that are due.
func (b *batch) tick(ex *execution) {
	if ex.status != longrun.StatusRunning {
		return // a command of this batch ended it
	}
	if !ex.deadline.IsZero() && !b.now.Before(ex.deadline) {
		b.touch(ex)
		b.finish(ex, longrun.StatusTimedOut, nil, asl.ErrTimeout, "The execution ran longer than the state machine's TimeoutSeconds")
		return
	}
	switch ex.phase {
	case phaseWait:
		if b.now.Before(ex.wake) {
			return
		}
		b.touch(ex)
		b.exited(ex, ex.nextInput)
		if ex.next == "" {
			b.finish(ex, longrun.StatusSucceeded, ex.nextInput, "", "")
			return
		}
		from := ex.state
		st := b.enter(ex, ex.next, ex.nextInput)
		b.logTransition(ex, from, ex.state)
		b.follow(ex, st)
	case phaseRetry:
		if b.now.Before(ex.wake) {
			return
		}
		b.touch(ex)
		if ex.task == nil {
			if st, more := b.startBranches(ex, ex.branches, ex.maxConc); more {
				b.follow(ex, st)
			}
			return
		}
		if st, more := b.startTask(ex, ex.task); more {
			b.follow(ex, st)
		}
	case phaseToken, phaseInvoke:
		switch {
		case !ex.taskDeadline.IsZero() && !b.now.Before(ex.taskDeadline):
			b.touch(ex)
			b.follow(ex, b.taskFailed(ex, asl.ErrTimeout,
				fmt.Sprintf("the task did not finish within %d seconds", ex.task.TimeoutSeconds)))
		case ex.phase == phaseToken && !ex.heartbeat.IsZero() && !b.now.Before(ex.heartbeat):
			b.touch(ex)
			b.follow(ex, b.taskFailed(ex, asl.ErrHeartbeatTimeout,
				fmt.Sprintf("no heartbeat within %d seconds", ex.task.HeartbeatSeconds)))
		}
	}
}

// enter enters state name and returns what the state says happens next.
func (b *batch) enter(ex *execution, name string, input json.RawMessage) asl.Step {
	ex.state, ex.stateInput, ex.entered = name, input, b.now
	ex.phase, ex.wake, ex.next, ex.nextInput = phaseNone, time.Time{}, "", nil
	ex.task, ex.retries, ex.token, ex.sent = nil, nil, "", false
	ex.taskDeadline, ex.heartbeat = time.Time{}, time.Time{}
	ex.branches, ex.started, ex.results, ex.maxConc = nil, 0, nil, 0
	if ex.sm().Pattern(name) == asl.WaitForTaskToken {
		ex.token = newToken()
	}
	b.event(ex, ex.sm().StateType(name)+"StateEntered", name, inputDetail(input))
	c := ex.context()
	st, err := ex.sm().Enter(name, input, &c, b.now)
	if err != nil {
		return asl.Step{Kind: asl.StepFail, Error: asl.ErrRuntime, Cause: err.Error()}
	}
	return st
}

func (b *batch) exited(ex *execution, output json.RawMessage) {
	b.event(ex, ex.sm().StateType(ex.state)+"StateExited", ex.state, outputDetail(output))
}

// follow applies steps until the execution waits for something or ends.
func (b *batch) follow(ex *execution, st asl.Step) {
	for b.err == nil {
		if ex.root().seq >= maxHistory {
			b.finish(ex, longrun.StatusFailed, nil, asl.ErrRuntime,
				fmt.Sprintf("the execution reached the limit of %d history events", maxHistory))
			return
		}
		if st.Variables != nil {
			ex.vars = st.Variables
		}
		switch st.Kind {
		case asl.StepNext:
			b.exited(ex, st.Output)
			from := ex.state
			st = b.enter(ex, st.Next, st.Output)
			b.logTransition(ex, from, ex.state)
		case asl.StepSucceed:
			b.exited(ex, st.Output)
			b.finish(ex, longrun.StatusSucceeded, st.Output, "", "")
			return
		case asl.StepFail:
			b.finish(ex, longrun.StatusFailed, nil, st.Error, st.Cause)
			return
		case asl.StepWait:
			ex.phase, ex.wake, ex.next, ex.nextInput = phaseWait, st.Until, st.Next, st.Output
			return
		case asl.StepRetry:
			ex.phase, ex.wake, ex.task, ex.retries = phaseRetry, st.Until, st.Task, st.Retries
			if st.Task == nil { // a Parallel or Map state runs its branches again
				ex.branches, ex.started, ex.results, ex.maxConc = st.Branches, 0, nil, st.MaxConcurrency
			}
			return
		case asl.StepBranches:
			var more bool
			if st, more = b.startBranches(ex, st.Branches, st.MaxConcurrency); !more {
				return
			}
		case asl.StepTask:
			var more bool
			if st, more = b.startTask(ex, st.Task); !more {
				return
			}
		default:
			b.finish(ex, longrun.StatusFailed, nil, asl.ErrRuntime, fmt.Sprintf("unexpected step %v in state %q", st.Kind, ex.state))
			return
		}
	}
}

// startTask starts an attempt of the current Task state. more reports that
// the attempt failed at once and st is what follows.
func (b *batch) startTask(ex *execution, t *asl.Task) (st asl.Step, more bool) {
	tgt := ex.m.tasks[taskKey(ex.sm().Path(), ex.state)]
	ex.task, ex.sent, ex.sendResult, ex.wake, ex.msg = t, false, nil, time.Time{}, taskMessage{}
	ex.attempt++
	ex.taskDeadline, ex.heartbeat = time.Time{}, time.Time{}
	if t.TimeoutSeconds > 0 {
		ex.taskDeadline = b.now.Add(time.Duration(t.TimeoutSeconds) * time.Second)
	}
	b.event(ex, "TaskScheduled", ex.state, scheduledDetail(t))
	b.event(ex, "TaskStarted", ex.state, detail{})
	if tgt == nil {
		return b.taskFailed(ex, asl.ErrRuntime, fmt.Sprintf("state %q has no integration", ex.state)), true
	}
	if tgt.kind == lambdaInvoke {
		ex.phase = phaseInvoke
		b.effects = append(b.effects, ex)
		return asl.Step{}, false
	}

	body, err := messageBody(t.Parameters)
	if err != nil {
		return b.taskFailed(ex, asl.ErrRuntime, err.Error()), true
	}
	_, txq, err := tgt.target(t.Parameters)
	if err != nil {
		return b.taskFailed(ex, errNoQueue, err.Error()), true
	}
	wait := t.Pattern == asl.WaitForTaskToken
	if wait {
		ex.phase = phaseToken
		b.e.tokens[ex.token] = ex
		if t.HeartbeatSeconds > 0 {
			ex.heartbeat = b.now.Add(time.Duration(t.HeartbeatSeconds) * time.Second)
		}
	}
	if txq == nil {
		if !wait {
			ex.phase = phaseInvoke
		}
		b.effects = append(b.effects, ex)
		return asl.Step{}, false
	}
	// The message is sent in the batch's transaction (write); until then
	// the execution waits for the token, or (RequestResponse) for the send's
	// result, which comes back as a command once committed.
	p := &pendingSend{ex: ex, q: txq, body: body, wait: wait, attempt: ex.attempt}
	b.sends = append(b.sends, p)
	ex.sent = true // it is, once this batch commits; a rollback undoes both
	if d, ok := txq.(txDeleter); ok && wait {
		ex.msg = taskMessage{q: d, send: p}
	}
	if wait {
		b.holeEvent(ex, p)
	} else {
		ex.phase = phaseInvoke
		b.effects = append(b.effects, ex)
	}
	return asl.Step{}, false
}

// pendingSend is a task message to send in the batch's transaction.
type pendingSend struct {
	ex      *execution
	row     *execution // ex's row in the transaction (seal)
	q       TxQueue
	body    string
	wait    bool
	attempt int
	id      string          // set in the transaction
	result  json.RawMessage // set in the transaction
}

// setResult gives ex, the execution or its snapshot, the result of a
// RequestResponse send if it still waits for that attempt's.
func (p *pendingSend) setResult(ex *execution) {
	if ex != nil && ex.attempt == p.attempt && ex.phase == phaseInvoke {
		ex.sendResult = p.result
	}
}

func (b *batch) dropToken(ex *execution) {
	if ex.phase == phaseToken && b.e.tokens[ex.token] == ex {
		delete(b.e.tokens, ex.token)
	}
}

func (b *batch) taskSucceeded(ex *execution, result json.RawMessage) asl.Step {
	b.dropToken(ex)
	ex.phase, ex.taskDeadline, ex.heartbeat = phaseNone, time.Time{}, time.Time{}
	b.event(ex, "TaskSucceeded", ex.state, outputDetail(result))
	c := ex.context()
	return ex.sm().TaskSucceeded(ex.state, ex.stateInput, result, &c)
}

func (b *batch) taskFailed(ex *execution, errName, cause string) asl.Step {
	b.dropToken(ex)
	ex.phase, ex.taskDeadline, ex.heartbeat = phaseNone, time.Time{}, time.Time{}
	typ := "TaskFailed"
	if errName == asl.ErrTimeout || errName == asl.ErrHeartbeatTimeout {
		typ = "TaskTimedOut"
	}
	b.event(ex, typ, ex.state, errorDetail(errName, cause))
	if ex.sm().Pattern(ex.state) == asl.WaitForTaskToken {
		ex.token = newToken() // a retried attempt gets a token of its own
	}
	c := ex.context()
	return ex.sm().TaskFailed(ex.state, ex.stateInput, errName, cause, ex.retries, &c, b.now, b.e.rnd)
}

// finish ends the execution with status.
func (b *batch) finish(ex *execution, status longrun.Status, output json.RawMessage, errName, cause string) {
	b.dropToken(ex)
	ex.status, ex.stop, ex.output, ex.errName, ex.cause = status, b.now, output, errName, cause
	wasBranching := ex.phase == phaseBranches
	ex.phase = phaseNone
	if wasBranching {
		b.abortChildren(ex)
	}
	if ex.parentARN != "" {
		delete(b.e.execs, ex.arn)
		b.finished = append(b.finished, ex)
		b.branchEnded(ex)
		return
	}
	switch status {
	case longrun.StatusSucceeded:
		b.event(ex, "ExecutionSucceeded", "", outputDetail(output))
	case longrun.StatusFailed:
		b.event(ex, "ExecutionFailed", "", errorDetail(errName, cause))
	case longrun.StatusTimedOut:
		b.event(ex, "ExecutionTimedOut", "", errorDetail(errName, cause))
	case longrun.StatusAborted:
		b.event(ex, "ExecutionAborted", "", errorDetail(errName, cause))
	}
	delete(b.e.execs, ex.arn)
	b.finished = append(b.finished, ex)
	b.statusEvent(ex)
	b.logTransition(ex, ex.state, string(status))
}

func (b *batch) logTransition(ex *execution, from, to string) {
	if !b.e.log.Enabled(b.ctx, slog.LevelInfo) {
		return
	}
	b.logs = append(b.logs, transition{ex: ex.name, machine: ex.m.name, from: from, to: to, status: ex.status})
}

// event appends a history event to ex; d is its detail (zero for none).
// An execution's events of one batch are stored together when it persists.
// A detail's large payload is stored once, as chunks the event refers to
// (blob.go): the event keeps the JSON around it, pre and suf.
func (b *batch) event(ex *execution, typ, state string, d detail) {
	ex = b.historyOf(ex)
	ex.seq++
	if len(ex.events) == 0 {
		ex.events = append(ex.events, '[')
	} else {
		ex.events = append(ex.events, ',')
	}
	ex.events = append(ex.events, `{"type":"`...)
	ex.events = append(ex.events, typ...) // type and state names are plain ASCII: ASL names are checked by asl
	ex.events = append(ex.events, '"')
	if state != "" {
		ex.events = append(ex.events, `,"state":`...)
		ex.events = appendJSONString(ex.events, state)
	}
	switch {
	case d.pre == nil:
	case len(d.payload) <= inlineMax:
		ex.events = append(ex.events, `,"detail":`...)
		ex.events = d.append(ex.events)
	default:
		ex.events = append(ex.events, `,"pre":`...)
		ex.events = appendJSONString(ex.events, string(d.pre))
		ex.events = append(ex.events, `,"ref":`...)
		ex.events = appendJSONString(ex.events, b.blobs.ref(ex.arn, d.payload)) // hashes, and the JSON around large values
		ex.events = append(ex.events, `,"suf":`...)
		ex.events = appendJSONString(ex.events, string(d.suf))
	}
	ex.events = append(ex.events, '}')
}

// holeEvent appends the TaskSubmitted event of a send whose MessageId is
// known only in the transaction; flushHistory fills it in.
func (b *batch) holeEvent(ex *execution, p *pendingSend) {
	state := ex.state
	ex = b.historyOf(ex)
	ex.seq++
	if len(ex.events) == 0 {
		ex.events = append(ex.events, '[')
	} else {
		ex.events = append(ex.events, ',')
	}
	ex.holes = append(ex.holes, hole{at: len(ex.events), state: state, send: p})
}

type hole struct {
	at    int
	state string
	send  *pendingSend
}

func appendJSONString(dst []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(dst, q...)
}

// storedEvent is one event in a local_history row. A detail with a large
// payload is stored as Pre, the payload's Ref and Suf instead of Detail.
type storedEvent struct {
	Type   string          `json:"type"`
	State  string          `json:"state,omitempty"`
	Detail json.RawMessage `json:"detail,omitempty"`
	Pre    string          `json:"pre,omitempty"`
	Ref    string          `json:"ref,omitempty"`
	Suf    string          `json:"suf,omitempty"`
}

// flushHistory inserts the events the batch added, a row per execution.
// It leaves the rows as they are: the transaction may run again.
func (b *batch) flushHistory() error {
	for _, ex := range b.rows {
		if len(ex.events) == 0 {
			continue
		}
		if b.history == nil {
			var err error
			if b.history, err = b.prepare(insertHistorySQL); err != nil {
				return fmt.Errorf("prepare history insert: %w", err)
			}
		}
		out, prev := b.scratch[:0], 0
		for _, h := range ex.holes {
			out = append(out, ex.events[prev:h.at]...)
			out = append(out, `{"type":"TaskSubmitted","state":`...)
			out = appendJSONString(out, h.state)
			out = append(out, `,"detail":`...)
			out = outputDetail(h.send.result).append(out)
			out = append(out, '}')
			prev = h.at
		}
		out = append(out, ex.events[prev:]...)
		out = append(out, ']')
		b.scratch = out
		if _, err := b.history.ExecContext(b.ctx, ex.arn, ex.firstEvent(), b.ms, string(out)); err != nil {
			return fmt.Errorf("insert history of %s: %w", ex.arn, err)
		}
	}
	return nil
}

// The statements of the engine's transactions, prepared once on the
// writer when Run starts (see prepare).
const (
	insertHistorySQL   = `INSERT INTO local_history (arn, first, ts, events) VALUES (?, ?, ?, ?)`
	insertOutboxSQL    = `INSERT INTO local_outbox (function, body, created_ms) VALUES (?, ?, ?)`
	insertExecutionSQL = `INSERT INTO local_executions
		(arn, machine, name, status, state, input, output, error, cause, start_ms, stop_ms, run)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	updateExecutionSQL = `UPDATE local_executions
		SET status = ?, state = ?, output = ?, error = ?, cause = ?, stop_ms = ?, run = ? WHERE arn = ?`
)

var batchQueries = []string{insertHistorySQL, insertOutboxSQL, payload.InsertChunkSQL, payload.HoldSQL, insertExecutionSQL, updateExecutionSQL}

// prepare returns query for the batch's transaction: the statement Run
// prepared on the writer (a PrepareContext per transaction was ~30% of
// persisting the executions), else prepared in the transaction.
func (b *batch) prepare(query string) (*sql.Stmt, error) {
	if st := b.e.stmts[query]; st != nil {
		return b.tx.StmtContext(b.ctx, st), nil
	}
	return b.tx.PrepareContext(b.ctx, query)
}

// write is the batch's transaction: the task messages, then the history,
// the executions and the outbox. It runs after seal, on another goroutine
// than Run's, and reads and sets only what the batch owns (its rows, its
// sends, its outbox), and only what it sets again when run again
// (sqlite.DB.Write may, after SQLITE_BUSY).
func (b *batch) write(tx *sql.Tx) error {
	b.tx = tx
	defer b.closeStmts()
	// A start's or stop's own writes first: if one fails, the batch rolls
	// back and is applied again one command at a time, so the failure is
	// that command's alone and nothing of it is kept (Run's isolation).
	for _, c := range b.withs {
		if err := c.with(b.ctx, tx); err != nil {
			return err
		}
	}
	for _, p := range b.sends {
		id, err := b.send(p)
		if err != nil {
			return fmt.Errorf("send task message of %s: %w", p.ex.arn, err)
		}
		p.id, p.result = id, sendResult(id, p.body)
		if !p.wait {
			p.row.sendResult = p.result // persisted with the row; the execution gets it once committed
		}
	}
	for _, a := range b.acks {
		if err := a.q.DeleteTx(b.ctx, tx, a.send.id); err != nil {
			return err
		}
	}
	if err := b.flushHistory(); err != nil {
		return err
	}
	if err := b.persist(); err != nil {
		return err
	}
	if err := b.blobs.write(b.ctx, b.prepare); err != nil {
		return err
	}
	if err := b.writeOutbox(); err != nil {
		return err
	}
	for _, id := range b.deletes {
		if _, err := tx.ExecContext(b.ctx, `DELETE FROM local_outbox WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete delivered event %d: %w", id, err)
		}
	}
	return nil
}

// send sends p's task message in the batch's transaction. A queue in the
// same file stores a large body as a ref to the chunks of the execution
// whose history holds the task's parameters: a MessageBody that is a JSON
// object or array is the same bytes as among them, cut already, so its ref
// is a lookup (blob.go); a string MessageBody is unescaped, and cut anew.
func (b *batch) send(p *pendingSend) (string, error) {
	if rq, ok := p.q.(refTxQueue); ok {
		owner := p.ex.root().arn
		return rq.SendRefTx(b.ctx, b.tx, p.body, owner, b.blobs.ref(owner, []byte(p.body)))
	}
	return p.q.SendTx(b.ctx, b.tx, p.body)
}

// refTxQueue is a TxQueue that stores a large body as a ref to payload
// chunks of an owner, stored by the caller in the same transaction
// (*sqlite.Queue).
type refTxQueue interface {
	SendRefTx(ctx context.Context, tx *sql.Tx, body, owner, ref string) (string, error)
}

// Event details, with the field names asl.Run uses. The JSON values they
// carry are valid already (asl's outputs, checked task results), so they
// are spliced in rather than encoded again.
//
// detail is an event's detail JSON: pre, then payload (possibly large),
// then suf.
type detail struct {
	pre, payload, suf []byte
}

func (d detail) append(dst []byte) []byte {
	dst = append(dst, d.pre...)
	dst = append(dst, d.payload...)
	return append(dst, d.suf...)
}

var (
	inputPre  = []byte(`{"input":`)
	outputPre = []byte(`{"output":`)
	closeSuf  = []byte(`}`)
	null      = json.RawMessage("null")
)

func rawDetail(pre []byte, raw json.RawMessage) detail {
	if len(raw) == 0 {
		raw = null
	}
	return detail{pre: pre, payload: raw, suf: closeSuf}
}

func inputDetail(raw json.RawMessage) detail  { return rawDetail(inputPre, raw) }
func outputDetail(raw json.RawMessage) detail { return rawDetail(outputPre, raw) }

func errorDetail(errName, cause string) detail {
	d, _ := json.Marshal(struct {
		Error string `json:"error"`
		Cause string `json:"cause"`
	}{errName, cause}) // two strings always encode
	return detail{pre: d}
}

func scheduledDetail(t *asl.Task) detail {
	resource, _ := json.Marshal(t.Resource) // a string always encodes
	pre := make([]byte, 0, 64+len(resource))
	pre = append(pre, `{"resource":`...)
	pre = append(pre, resource...)
	pre = append(pre, `,"pattern":"`...)
	pre = append(pre, t.Pattern...)
	pre = append(pre, `","parameters":`...)
	params := t.Parameters
	if len(params) == 0 {
		params = null
	}
	suf := make([]byte, 0, 64)
	suf = append(suf, `,"timeoutInSeconds":`...)
	suf = strconv.AppendInt(suf, int64(t.TimeoutSeconds), 10)
	suf = append(suf, `,"heartbeatInSeconds":`...)
	suf = strconv.AppendInt(suf, int64(t.HeartbeatSeconds), 10)
	return detail{pre: pre, payload: params, suf: append(suf, '}')}
}
