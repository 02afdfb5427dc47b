package local

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/asl"
)

// runRecord is the runtime state of a RUNNING execution, stored as JSON in
// local_executions.run. Times are Unix milliseconds.
type runRecord struct {
	Deadline     int64           `json:"deadline,omitempty"`
	Seq          int64           `json:"seq"`
	State        string          `json:"state"`
	StateInput   json.RawMessage `json:"stateInput,omitempty"`
	InputIsState bool            `json:"inputIsState,omitempty"` // StateInput is the execution's input
	Entered      int64           `json:"entered"`
	Phase        phase           `json:"phase"`
	Wake         int64           `json:"wake,omitempty"`
	Next         string          `json:"next,omitempty"`
	NextInput    json.RawMessage `json:"nextInput,omitempty"`
	Task         *asl.Task       `json:"task,omitempty"`
	Attempt      int             `json:"attempt,omitempty"`
	Retries      []int           `json:"retries,omitempty"`
	Token        string          `json:"token,omitempty"`
	Sent         bool            `json:"sent,omitempty"`
	SendResult   json.RawMessage `json:"sendResult,omitempty"`
	TaskDeadline int64           `json:"taskDeadline,omitempty"`
	Heartbeat    int64           `json:"heartbeat,omitempty"`
	Vars         json.RawMessage `json:"vars,omitempty"`
	// A child execution (branch.go): its machine, parent and index.
	Machine string `json:"machine,omitempty"`
	Parent  string `json:"parent,omitempty"`
	Index   int    `json:"index,omitempty"`
	// A Parallel or Map state's children.
	Branches []asl.Branch        `json:"branches,omitempty"`
	Started  int                 `json:"started,omitempty"`
	Results  []*asl.BranchResult `json:"results,omitempty"`
	MaxConc  int                 `json:"maxConc,omitempty"`
	// Large payloads are refs to their chunks (blob.go) instead: the
	// state's input, a Wait's next input, the task's parameters.
	StateInputRef string `json:"stateInputRef,omitempty"`
	NextInputRef  string `json:"nextInputRef,omitempty"`
	ParamsRef     string `json:"paramsRef,omitempty"`
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// resolveRun reads the payloads rec refers to back into it.
func resolveRun(blobs *blobReader, arn string, rec *runRecord) error {
	var err error
	if rec.StateInputRef != "" {
		if rec.StateInput, err = blobs.payload(arn, rec.StateInputRef); err != nil {
			return err
		}
	}
	if rec.NextInputRef != "" {
		if rec.NextInput, err = blobs.payload(arn, rec.NextInputRef); err != nil {
			return err
		}
	}
	if rec.ParamsRef != "" && rec.Task != nil {
		if rec.Task.Parameters, err = blobs.payload(arn, rec.ParamsRef); err != nil {
			return err
		}
	}
	return nil
}

// persist writes every execution the batch changed (its rows, see seal).
func (b *batch) persist() error {
	var insert, update *sql.Stmt
	defer func() {
		for _, s := range []*sql.Stmt{insert, update} {
			if s != nil {
				_ = s.Close() // the transaction's outcome is what matters
			}
		}
	}()
	for _, ex := range b.rows {
		var run any
		if ex.status == longrun.StatusRunning {
			rec := runRecord{
				Deadline: ms(ex.deadline), Seq: ex.seq, State: ex.state, StateInput: ex.stateInput,
				Entered: ms(ex.entered), Phase: ex.phase, Wake: ms(ex.wake), Next: ex.next, NextInput: ex.nextInput,
				Task: ex.task, Attempt: ex.attempt, Retries: ex.retries, Token: ex.token, Sent: ex.sent, SendResult: ex.sendResult,
				TaskDeadline: ms(ex.taskDeadline), Heartbeat: ms(ex.heartbeat), Vars: ex.vars,
				Parent: ex.parentARN, Index: ex.index, Branches: ex.branches, Started: ex.started, Results: ex.results, MaxConc: ex.maxConc,
			}
			if ex.sub != nil {
				rec.Machine = ex.sub.Path()
			}
			// Payloads are the bulk of a row and often repeat one another:
			// the first state's input is the execution's, and a sent task's
			// parameters are needed no more (a retry prepares them again).
			if bytes.Equal(ex.stateInput, ex.input) {
				rec.StateInput, rec.InputIsState = nil, true
			}
			if ex.task != nil && ex.phase == phaseToken && ex.sent {
				t := *ex.task
				t.Parameters = nil
				rec.Task = &t
			}
			if len(rec.StateInput) > inlineMax {
				rec.StateInputRef, rec.StateInput = b.blobs.ref(ex.arn, rec.StateInput), nil
			}
			if len(rec.NextInput) > inlineMax {
				rec.NextInputRef, rec.NextInput = b.blobs.ref(ex.arn, rec.NextInput), nil
			}
			if rec.Task != nil && len(rec.Task.Parameters) > inlineMax {
				t := *rec.Task
				rec.ParamsRef, t.Parameters = b.blobs.ref(ex.arn, t.Parameters), nil
				rec.Task = &t
			}
			j, err := json.Marshal(&rec)
			if err != nil {
				return fmt.Errorf("encode run of %s: %w", ex.arn, err)
			}
			run = string(j)
		}
		var stop any
		if !ex.stop.IsZero() {
			stop = ex.stop.UnixMilli()
		}
		var err error
		if ex.created {
			if insert == nil {
				if insert, err = b.prepare(insertExecutionSQL); err != nil {
					return fmt.Errorf("prepare execution insert: %w", err)
				}
			}
			_, err = insert.ExecContext(b.ctx, ex.arn, ex.m.name, ex.name, string(ex.status), ex.state, b.blobs.ref(ex.arn, ex.input),
				b.blobs.refOrNil(ex.arn, ex.output), ex.errName, ex.cause, ex.start.UnixMilli(), stop, run)
		} else {
			if update == nil {
				if update, err = b.prepare(updateExecutionSQL); err != nil {
					return fmt.Errorf("prepare execution update: %w", err)
				}
			}
			_, err = update.ExecContext(b.ctx, string(ex.status), ex.state, b.blobs.refOrNil(ex.arn, ex.output), ex.errName, ex.cause, stop, run, ex.arn)
		}
		if err != nil {
			return fmt.Errorf("save execution %s: %w", ex.arn, err)
		}
	}
	return nil
}

// load reads the running executions and the undelivered events into
// memory. pending are the executions whose invocation or send was under way
// when the engine stopped: they run again.
func (e *Engine) load(ctx context.Context) (pending []*execution, outbox []outboxItem, err error) {
	err = e.db.Read(ctx, func(tx *sql.Tx) error {
		type row struct {
			arn, mname, name, input, run string
			start                        int64
		}
		var running []row
		rows, err := tx.QueryContext(ctx, `SELECT arn, machine, name, input, start_ms, run FROM local_executions WHERE status = 'RUNNING'`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.arn, &r.mname, &r.name, &r.input, &r.start, &r.run); err != nil {
				rows.Close()
				return err
			}
			running = append(running, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		blobs := newBlobReader(ctx, tx)
		defer blobs.close()
		for _, r := range running {
			arn, mname, name, run, start := r.arn, r.mname, r.name, r.run, r.start
			input, err := blobs.payload(arn, r.input)
			if err != nil {
				return err
			}
			m := e.machines[mname]
			if m == nil {
				e.log.ErrorContext(ctx, "local engine: running execution of an unknown machine left as it is", "execution", arn, "machine", mname)
				continue
			}
			var rec runRecord
			if err := json.Unmarshal([]byte(run), &rec); err != nil {
				return fmt.Errorf("decode run of %s: %w", arn, err)
			}
			if err := resolveRun(blobs, arn, &rec); err != nil {
				return err
			}
			ex := &execution{
				arn: arn, name: name, m: m, input: input, start: fromMS(start), status: longrun.StatusRunning,
				deadline: fromMS(rec.Deadline), seq: rec.Seq, state: rec.State, stateInput: rec.StateInput,
				entered: fromMS(rec.Entered), phase: rec.Phase, wake: fromMS(rec.Wake), next: rec.Next, nextInput: rec.NextInput,
				task: rec.Task, attempt: rec.Attempt, retries: rec.Retries, token: rec.Token, sent: rec.Sent, sendResult: rec.SendResult,
				taskDeadline: fromMS(rec.TaskDeadline), heartbeat: fromMS(rec.Heartbeat), vars: rec.Vars,
				parentARN: rec.Parent, index: rec.Index, branches: rec.Branches, started: rec.Started, results: rec.Results, maxConc: rec.MaxConc,
			}
			if rec.Machine != "" {
				if ex.sub = m.sm.Machine(rec.Machine); ex.sub == nil {
					e.log.ErrorContext(ctx, "local engine: running branch of a machine that no longer has it left as it is", "execution", arn, "branch", rec.Machine)
					continue
				}
			}
			if rec.InputIsState {
				ex.stateInput = ex.input
			}
			e.execs[arn] = ex
			if ex.phase == phaseToken {
				e.tokens[ex.token] = ex
			}
			if ex.phase == phaseInvoke || (ex.phase == phaseToken && !ex.sent) { // run again, or (a committed send) applied
				pending = append(pending, ex)
			}
			e.arm(ex)
		}
		for _, ex := range e.execs {
			if ex.parentARN != "" {
				ex.parent = e.execs[ex.parentARN]
			}
		}
		orows, err := tx.QueryContext(ctx, `SELECT id, function, body FROM local_outbox ORDER BY id`)
		if err != nil {
			return err
		}
		defer orows.Close()
		for orows.Next() {
			var o outboxItem
			var body string
			if err := orows.Scan(&o.id, &o.function, &body); err != nil {
				return err
			}
			o.body = json.RawMessage(body)
			outbox = append(outbox, o)
		}
		return orows.Err()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("local engine: load running executions: %w", err)
	}
	return pending, outbox, nil
}

// Description is an execution as DescribeExecution shows it, plus the state
// it is in.
type Description struct {
	ARN             string
	Name            string
	StateMachineARN string
	Status          longrun.Status
	// State is the current state while RUNNING, the last one entered after.
	State     string
	Input     json.RawMessage
	Output    json.RawMessage // SUCCEEDED only
	Error     string
	Cause     string
	StartDate time.Time
	StopDate  time.Time // zero while RUNNING
}

// CurrentState returns the state the execution with arn is in (the last one
// entered, once it ended), with one single-column read; ENOTFOUND for an
// unknown arn.
func (e *Engine) CurrentState(ctx context.Context, arn string) (string, error) {
	var state string
	err := e.db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT state FROM local_executions WHERE arn = ?`, arn).Scan(&state)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return "", longrun.Errorf(longrun.ENOTFOUND, "no execution %s", arn)
	}
	if err != nil {
		return "", fmt.Errorf("read the state of %s: %w", arn, err)
	}
	return state, nil
}

// Describe returns the execution with arn, or an ENOTFOUND error.
func (e *Engine) Describe(ctx context.Context, arn string) (*Description, error) {
	d := &Description{ARN: arn}
	err := e.db.Read(ctx, func(tx *sql.Tx) error {
		var (
			mname, status, input string
			output               sql.NullString
			start                int64
			stop                 sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `SELECT machine, name, status, state, input, output, error, cause, start_ms, stop_ms
			FROM local_executions WHERE arn = ?`, arn).
			Scan(&mname, &d.Name, &status, &d.State, &input, &output, &d.Error, &d.Cause, &start, &stop)
		if err != nil {
			return err
		}
		if m := e.machines[mname]; m != nil {
			d.StateMachineARN = m.arn
		}
		blobs := newBlobReader(ctx, tx)
		defer blobs.close()
		if d.Input, err = blobs.payload(arn, input); err != nil {
			return err
		}
		if d.Output, err = blobs.optional(arn, output); err != nil {
			return err
		}
		d.Status, d.StartDate = longrun.Status(status), fromMS(start)
		if stop.Valid {
			d.StopDate = fromMS(stop.Int64)
		}
		return nil
	})
	if err == sql.ErrNoRows {
		return nil, longrun.Errorf(longrun.ENOTFOUND, "execution %s does not exist", arn)
	}
	if err != nil {
		return nil, fmt.Errorf("describe execution %s: %w", arn, err)
	}
	return d, nil
}

// History returns the execution's events in order, as GetExecutionHistory
// lists them; an unknown execution gives ENOTFOUND.
func (e *Engine) History(ctx context.Context, arn string) ([]asl.HistoryEvent, error) {
	var events []asl.HistoryEvent
	err := e.db.Read(ctx, func(tx *sql.Tx) error {
		type row struct {
			first, ts int64
			events    string
		}
		var stored []row
		rows, err := tx.QueryContext(ctx, `SELECT first, ts, events FROM local_history WHERE arn = ? ORDER BY first`, arn)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.first, &r.ts, &r.events); err != nil {
				rows.Close()
				return err
			}
			stored = append(stored, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		blobs := newBlobReader(ctx, tx)
		defer blobs.close()
		for _, r := range stored {
			var evs []storedEvent
			if err := json.Unmarshal([]byte(r.events), &evs); err != nil {
				return fmt.Errorf("decode events %d of %s: %w", r.first, arn, err)
			}
			for i, ev := range evs {
				if ev.Ref != "" {
					payload, err := blobs.payload(arn, ev.Ref)
					if err != nil {
						return err
					}
					ev.Detail = detail{pre: []byte(ev.Pre), payload: payload, suf: []byte(ev.Suf)}.append(nil)
				}
				events = append(events, asl.HistoryEvent{
					ID: r.first + int64(i), Timestamp: fromMS(r.ts), Type: ev.Type, State: ev.State, Detail: ev.Detail,
				})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", arn, err)
	}
	if len(events) == 0 {
		return nil, longrun.Errorf(longrun.ENOTFOUND, "execution %s does not exist", arn)
	}
	return events, nil
}
