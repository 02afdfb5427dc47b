package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group commit.
//
// Every write of the process goes through the one writer connection, so
// under load the writer is the bottleneck: in the end-to-end benchmark it
// was held ~83% of the time, a large part of it beginning and committing
// small transactions (BEGIN, the WAL frames of COMMIT, handing the
// connection to the next goroutine). Callers that queue meanwhile are
// therefore run together: the caller that gets the writer's turn (the
// leader) takes the queued calls and runs each one's function in a
// savepoint of a single transaction, rolling that savepoint back if the
// function fails, and commits once.
//
// What each caller sees stays what a transaction of its own would give:
//
//   - its function's changes commit all together or not at all (its
//     savepoint), and after the functions queued before it, as if they had
//     committed first;
//   - Write returns only once the group has committed; an error is its own
//     function's error, or its context's if it ended before its function
//     started;
//   - if the group cannot commit, or a savepoint cannot be rolled back or
//     released (SQLite rolled the transaction back by itself), nothing of it
//     is kept and every function of the group is run again alone, exactly
//     as before grouping, each with its own outcome (a function may run more
//     than once, as it already could after SQLITE_BUSY);
//   - onCommit hooks run only for the functions that succeeded, after the
//     commit;
//   - a panic in a function is raised again in its caller's goroutine.
//
// A lone caller runs in a transaction of its own, with no savepoint.

// maxGroup bounds how many callers' functions share one transaction, so a
// caller that joins a long queue does not wait for all of it.
const maxGroup = 64

// Savepoint statements, prepared with the others (see writeQueries).
const (
	savepointSQL  = `SAVEPOINT longrun_write`
	releaseSQL    = `RELEASE longrun_write`
	rollbackToSQL = `ROLLBACK TO longrun_write`
)

// States of a write call.
const (
	callQueued    int32 = iota
	callRunning         // a leader took it: its outcome is coming
	callWithdrawn       // its context ended first: it never runs
)

type writeCall struct {
	ctx   context.Context
	fn    func(tx *sql.Tx) error
	state atomic.Int32
	done  chan writeOutcome // buffered: the leader never waits for the caller
}

type writeOutcome struct {
	err      error
	panicked bool
	panicVal any
}

func (o writeOutcome) result() error {
	if o.panicked {
		panic(o.panicVal)
	}
	return o.err
}

// writeQueue holds the calls waiting for the writer, and the turn to lead.
type writeQueue struct {
	turn chan struct{} // capacity 1: held by the leader

	mu    sync.Mutex
	calls []*writeCall
}

func newWriteQueue() *writeQueue { return &writeQueue{turn: make(chan struct{}, 1)} }

func (q *writeQueue) push(c *writeCall) {
	q.mu.Lock()
	q.calls = append(q.calls, c)
	q.mu.Unlock()
}

// take removes up to maxGroup queued calls, dropping withdrawn ones.
func (q *writeQueue) take() []*writeCall {
	q.mu.Lock()
	defer q.mu.Unlock()
	var group []*writeCall
	n := 0
	for _, c := range q.calls {
		if len(group) == maxGroup {
			break
		}
		n++
		if c.state.Load() != callWithdrawn {
			group = append(group, c)
		}
	}
	rest := copy(q.calls, q.calls[n:])
	clear(q.calls[rest:])
	q.calls = q.calls[:rest]
	return group
}

// Write runs fn in an IMMEDIATE transaction on the single writer connection
// and commits it if fn returns nil; fn's changes are kept all or nothing.
// Writes from this process are serialized, and those that queue together
// commit together (see group.go). A lock held by another process is waited
// for (busy timeout) and then retried up to three times, so fn may run more
// than once. fn must not call Write, nor commit or roll back tx (see the
// package doc).
func (db *DB) Write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	c := &writeCall{ctx: ctx, fn: fn, done: make(chan writeOutcome, 1)}
	db.writes.push(c)
	select {
	case o := <-c.done:
		return o.result()
	case db.writes.turn <- struct{}{}:
		o, ran := db.lead(c)
		<-db.writes.turn
		if !ran {
			return fmt.Errorf("begin write: %w", ctx.Err())
		}
		return o.result()
	case <-ctx.Done():
		if c.state.CompareAndSwap(callQueued, callWithdrawn) {
			return fmt.Errorf("begin write: %w", ctx.Err())
		}
		return (<-c.done).result()
	}
}

// lead runs groups of queued calls until c's outcome is known, or c's
// context ends before c is taken (ran is false). A leader releases the turn
// only once every call it took has its outcome, so while c holds the turn
// c is either still queued or done.
func (db *DB) lead(c *writeCall) (o writeOutcome, ran bool) {
	for {
		select {
		case o := <-c.done:
			return o, true
		default:
		}
		if c.ctx.Err() != nil && c.state.CompareAndSwap(callQueued, callWithdrawn) {
			return writeOutcome{}, false
		}
		db.runGroup(db.writes.take())
	}
}

func (db *DB) runGroup(group []*writeCall) {
	if len(group) > 1 && db.writeTogether(group) {
		return
	}
	for _, c := range group {
		if c.state.Load() == callRunning || c.state.CompareAndSwap(callQueued, callRunning) {
			c.done <- db.callAlone(c)
		}
	}
}

func (db *DB) callAlone(c *writeCall) (o writeOutcome) {
	defer func() {
		if v := recover(); v != nil {
			o = writeOutcome{panicked: true, panicVal: v}
		}
	}()
	return writeOutcome{err: db.writeAlone(c.ctx, c.fn)}
}

// writeTogether runs the group in one transaction and, if it commits,
// delivers every outcome. If it returns false, nothing was committed and
// nothing delivered: the caller runs the calls alone.
func (db *DB) writeTogether(group []*writeCall) bool {
	bg := context.Background() // the transaction is the group's; each fn uses its own context
	prof := db.startTx()
	tx, err := db.writer.BeginTx(bg, nil)
	if err != nil {
		return false
	}
	abandon := func() bool {
		_ = tx.Rollback()
		db.takeHooks(tx)
		return false
	}
	outcomes := make([]*writeOutcome, len(group))
	for i, c := range group {
		if !c.state.CompareAndSwap(callQueued, callRunning) {
			continue
		}
		if err := c.ctx.Err(); err != nil {
			outcomes[i] = &writeOutcome{err: fmt.Errorf("begin write: %w", err)}
			continue
		}
		if _, err := db.w.exec(bg, tx, savepointSQL); err != nil {
			return abandon()
		}
		mark := db.hookMark(tx)
		o := db.callInTx(c.fn, tx)
		if o.err != nil || o.panicked {
			db.dropHooks(tx, mark)
			if _, err := db.w.exec(bg, tx, rollbackToSQL); err != nil {
				return abandon()
			}
		}
		if _, err := db.w.exec(bg, tx, releaseSQL); err != nil {
			return abandon()
		}
		outcomes[i] = &o
	}
	if db.faultErr() != nil { // the functions run again alone, and each fails with it
		return abandon()
	}
	prof.committing()
	if err := tx.Commit(); err != nil {
		db.takeHooks(tx)
		return false
	}
	prof.committed()
	db.ckpt.committed()
	for _, h := range db.takeHooks(tx) {
		h()
	}
	for i, c := range group {
		if outcomes[i] != nil {
			c.done <- *outcomes[i]
		}
	}
	return true
}

func (db *DB) callInTx(fn func(tx *sql.Tx) error, tx *sql.Tx) (o writeOutcome) {
	defer func() {
		if v := recover(); v != nil {
			o = writeOutcome{panicked: true, panicVal: v}
		}
	}()
	return writeOutcome{err: db.call(fn, tx)}
}
