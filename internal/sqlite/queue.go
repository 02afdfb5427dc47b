package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/payload"
)

// QueueConfig is a queue's redrive policy, as on SQS.
type QueueConfig struct {
	// MaxReceiveCount is how many receives a message gets; the receive after
	// the last one moves it to DeadLetter instead. 0 (or no DeadLetter): no limit.
	MaxReceiveCount int
	// DeadLetter names the queue that takes messages past MaxReceiveCount.
	DeadLetter string
}

// The statements of the queue, prepared once (see prepared).
const (
	sendSQL        = `INSERT INTO queue_messages (id, queue, body, sent_at, visible_at, owner) VALUES (?, ?, ?, ?, ?, ?)`
	nextVisibleSQL = `SELECT min(visible_at) FROM queue_messages WHERE queue = ? AND visible_at > ?`
	visibleSQL     = `SELECT seq, id, body, sent_at, receive_count, owner FROM queue_messages
		WHERE queue = ? AND visible_at <= ? ORDER BY visible_at, seq LIMIT ?`
	deadLetterSQL       = `UPDATE queue_messages SET queue = ?, visible_at = ?, receive_count = 0, receipt = NULL WHERE seq = ?`
	takeSQL             = `UPDATE queue_messages SET receive_count = receive_count + 1, visible_at = ?, receipt = ? WHERE seq = ?`
	deleteMessageSQL    = `DELETE FROM queue_messages WHERE queue = ? AND receipt = ? RETURNING id, owner`
	changeVisibilitySQL = `UPDATE queue_messages SET visible_at = ? WHERE queue = ? AND receipt = ?`
	deleteByIDSQL       = `DELETE FROM queue_messages WHERE queue = ? AND id = ? RETURNING owner`
	heldSQL             = `SELECT 1 FROM queue_messages WHERE queue = ? AND receipt = ?`
)

// MaxReceive is the most messages one Receive returns, as on SQS; a larger
// max is refused so code that works here also works there.
const MaxReceive = 10

// Queue is longrun.Queue on the queue_messages table, one named queue of the
// DB. Any number of Queue values may share a name, in one process: Send on
// one wakes Receive on the others.
//
// Receipts: every receive makes a new receipt and forgets the previous one.
// Delete with a receipt that is not current (the message was received again,
// or is gone) deletes nothing and returns nil, as SQS does for a stale
// handle. ChangeVisibility with such a receipt returns ENOTFOUND, so a
// worker extending its visibility learns it no longer holds the message.
//
// A message moved to the dead-letter queue starts there with a receive count
// of 0 and is visible at once.
type Queue struct {
	db   *DB
	name string
	cfg  QueueConfig
}

var _ longrun.Queue = (*Queue)(nil)

// NewQueue returns the queue called name in db. Queues need no creation:
// a name is a queue once a message is sent to it.
func NewQueue(db *DB, name string, cfg QueueConfig) *Queue {
	return &Queue{db: db, name: name, cfg: cfg}
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

func newMessageID() string { return longrun.NewExecutionID() }

func newReceipt(id string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return id + "." + base64.RawURLEncoding.EncodeToString(b)
}

// Send adds a message, visible at once, and wakes waiting receivers.
func (q *Queue) Send(ctx context.Context, body string) error {
	return q.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := q.SendTx(ctx, tx, body)
		return err
	})
}

// SendTx adds a message as part of tx, a transaction of the DB's Write, and
// returns its id. The message exists if and only if the caller's other
// writes commit: the local engine moves an execution into its Work state and
// enqueues its task at once. Receivers in this process are woken after the
// commit; Wake does the same by hand.
func (q *Queue) SendTx(ctx context.Context, tx *sql.Tx, body string) (string, error) {
	return q.SendOwnedTx(ctx, tx, body, "")
}

// SendOwnedTx is SendTx for a body whose large values belong to owner, an
// execution's ARN whose payload chunks (internal/payload) the same
// transaction stores: the local engine's task message carries the
// execution's input, which the engine and the record have stored already.
// A body larger than payload.Inline is then stored as a ref to owner's
// chunks, held by the message until it is deleted; receivers get the body
// as it was sent. An empty owner stores the body as it is.
func (q *Queue) SendOwnedTx(ctx context.Context, tx *sql.Tx, body, owner string) (string, error) {
	now := toMillis(q.db.Now())
	id := newMessageID()
	var stored, ownerCol any = body, nil
	if owner != "" && len(body) > payload.Inline {
		c := payload.NewChunks(messageHolder(id))
		stored, ownerCol = c.Ref(owner, []byte(body)), owner
		err := c.Write(ctx, func(query string) (*sql.Stmt, error) { return q.db.w.in(tx).PrepareContext(ctx, query) })
		c.Close()
		if err != nil {
			return "", fmt.Errorf("send to queue %s: %w", q.name, err)
		}
	}
	if _, err := q.db.w.exec(ctx, tx, sendSQL, id, q.name, stored, now, now, ownerCol); err != nil {
		return "", fmt.Errorf("send to queue %s: %w", q.name, err)
	}
	q.db.onCommit(tx, q.Wake)
	return id, nil
}

// DeleteTx removes the message with id as part of tx, a transaction of the
// DB's Write, whoever holds it. The local engine deletes a task's message
// in the transaction that records the task's answer (SendTaskSuccess or
// SendTaskFailure): the message is done with once the token is answered,
// and the worker's Delete that follows then finds nothing to write.
func (q *Queue) DeleteTx(ctx context.Context, tx *sql.Tx, id string) error {
	var owner sql.NullString
	err := q.db.w.queryRow(ctx, tx, deleteByIDSQL, q.name, id).Scan(&owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err == nil && owner.Valid:
		// The message's hold on its owner's payload chunks goes with it, as
		// in Delete: the last hold deletes them.
		err = payload.Release(ctx, q.db.w.in(tx), owner.String, messageHolder(id))
	}
	if err != nil {
		return fmt.Errorf("delete message %s from queue %s: %w", id, q.name, err)
	}
	return nil
}

// SendRefTx is SendOwnedTx for a caller that has made the body's ref
// itself, its chunks stored (or to be stored) in tx: the local engine, whose
// task message body is the MessageBody it cut already among the task's
// parameters, so the body is not cut and hashed again. ref is what
// payload.Chunks.Ref returned for body and owner; if it is not a ref, the
// body is stored as it is.
func (q *Queue) SendRefTx(ctx context.Context, tx *sql.Tx, body, owner, ref string) (string, error) {
	if owner == "" || !payload.IsRef(ref) {
		return q.SendOwnedTx(ctx, tx, body, "")
	}
	now := toMillis(q.db.Now())
	id := newMessageID()
	if _, err := q.db.w.exec(ctx, tx, payload.HoldSQL, owner, messageHolder(id)); err != nil {
		return "", fmt.Errorf("send to queue %s: hold payloads of %s: %w", q.name, owner, err)
	}
	if _, err := q.db.w.exec(ctx, tx, sendSQL, id, q.name, ref, now, now, owner); err != nil {
		return "", fmt.Errorf("send to queue %s: %w", q.name, err)
	}
	q.db.onCommit(tx, q.Wake)
	return id, nil
}

// messageHolder is a message's hold on the payload chunks its body refers to.
func messageHolder(id string) string { return "message:" + id }

// Wake wakes every Receive waiting on this queue in this process, to look
// again. Send and SendTx call it; other writers of queue_messages may.
func (q *Queue) Wake() { q.db.notify(q.name) }

// crossProcessPoll bounds how late a waiting Receive sees a message sent by
// another process, which cannot wake it.
const crossProcessPoll = time.Second

// Receive returns up to max visible messages, each then invisible for
// visibility. With none visible it waits up to wait, waking on any Send or
// ChangeVisibility(0) to this queue in this process, when the earliest
// in-flight message's visibility ends, and every second for messages sent
// by other processes. A cancelled ctx ends the wait with an
// error wrapping ctx.Err().
func (q *Queue) Receive(ctx context.Context, max int, wait, visibility time.Duration) ([]longrun.Message, error) {
	if max < 1 || max > MaxReceive {
		return nil, longrun.Errorf(longrun.EINVALID, "receive max %d is outside 1..%d", max, MaxReceive)
	}
	if wait < 0 || visibility < 0 {
		return nil, longrun.Errorf(longrun.EINVALID, "receive wait %s and visibility %s must not be negative", wait, visibility)
	}
	deadline := q.db.Now().Add(wait)
	for {
		// Taken before looking, so a Send between the look and the wait still wakes us.
		changed := q.db.signal(q.name)
		msgs, next, err := q.receiveOnce(ctx, max, visibility)
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		if !q.db.Now().Before(deadline) {
			return nil, nil
		}
		until := deadline
		if !next.IsZero() && next.Before(until) {
			until = next
		}
		// Sends from another process on the same file wake nobody here, so
		// look again at least this often.
		if other := q.db.Now().Add(crossProcessPoll); other.Before(until) {
			until = other
		}
		timeUp, stop := q.db.Clock.Until(until)
		select {
		case <-changed:
		case <-timeUp:
		case <-ctx.Done():
			stop()
			return nil, fmt.Errorf("receive from queue %s: %w", q.name, ctx.Err())
		}
		stop()
	}
}

// receiveOnce takes what is visible now. With nothing visible it returns
// when the earliest in-flight message becomes visible (zero if none is).
func (q *Queue) receiveOnce(ctx context.Context, max int, visibility time.Duration) ([]longrun.Message, time.Time, error) {
	var (
		msgs  []longrun.Message
		next  time.Time
		moved bool
	)
	err := q.db.Write(ctx, func(tx *sql.Tx) error {
		msgs, next, moved = nil, time.Time{}, false
		now := q.db.Now()
		nowMS := toMillis(now)
		for len(msgs) < max {
			taken, err := q.takeBatch(ctx, tx, max-len(msgs), now, visibility)
			if err != nil {
				return err
			}
			msgs = append(msgs, taken.msgs...)
			moved = moved || taken.moved
			if !taken.moved {
				break // the batch was all there was; without moves another look finds nothing new
			}
		}
		if len(msgs) > 0 {
			return nil
		}
		var nextMS sql.NullInt64
		if err := q.db.w.queryRow(ctx, tx, nextVisibleSQL, q.name, nowMS).Scan(&nextMS); err != nil {
			return fmt.Errorf("next visible: %w", err)
		}
		next = fromNullMillis(nextMS)
		return nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("receive from queue %s: %w", q.name, err)
	}
	if moved {
		q.db.notify(q.cfg.DeadLetter)
	}
	return msgs, next, nil
}

type batch struct {
	msgs  []longrun.Message
	moved bool
}

func (q *Queue) takeBatch(ctx context.Context, tx *sql.Tx, n int, now time.Time, visibility time.Duration) (batch, error) {
	type row struct {
		seq          int64
		id, body     string
		sentAt       int64
		receiveCount int
		owner        sql.NullString
	}
	nowMS := toMillis(now)
	rows, err := q.db.w.query(ctx, tx, visibleSQL, q.name, nowMS, n)
	if err != nil {
		return batch{}, fmt.Errorf("select visible: %w", err)
	}
	var found []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.id, &r.body, &r.sentAt, &r.receiveCount, &r.owner); err != nil {
			rows.Close()
			return batch{}, err
		}
		found = append(found, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return batch{}, err
	}

	var b batch
	var blobs *payload.Reader
	redrive := q.cfg.MaxReceiveCount > 0 && q.cfg.DeadLetter != ""
	for _, r := range found {
		if redrive && r.receiveCount >= q.cfg.MaxReceiveCount {
			if _, err := q.db.w.exec(ctx, tx, deadLetterSQL, q.cfg.DeadLetter, nowMS, r.seq); err != nil {
				return batch{}, fmt.Errorf("move %s to %s: %w", r.id, q.cfg.DeadLetter, err)
			}
			b.moved = true
			continue
		}
		receipt := newReceipt(r.id)
		if _, err := q.db.w.exec(ctx, tx, takeSQL, toMillis(now.Add(visibility)), receipt, r.seq); err != nil {
			return batch{}, fmt.Errorf("take %s: %w", r.id, err)
		}
		if r.owner.Valid {
			if blobs == nil {
				blobs = payload.NewReader(ctx, q.db.w.in(tx))
				defer blobs.Close()
			}
			body, err := blobs.Payload(r.owner.String, r.body)
			if err != nil {
				return batch{}, fmt.Errorf("body of %s: %w", r.id, err)
			}
			r.body = string(body)
		}
		b.msgs = append(b.msgs, longrun.Message{
			ID:           r.id,
			Body:         r.body,
			Receipt:      receipt,
			ReceiveCount: r.receiveCount + 1,
			SentAt:       fromMillis(r.sentAt),
		})
	}
	return b, nil
}

// Delete removes the message if receipt is its current one; a stale or
// unknown receipt deletes nothing and is not an error (see Queue). A
// receipt that matches nothing costs a read, not a write: in `longrun dev`
// the engine has usually deleted a task's message already, with the task's
// answer (DeleteTx), when the worker deletes it.
func (q *Queue) Delete(ctx context.Context, receipt string) error {
	var one int
	switch err := q.db.r.row(ctx, q.db.reader, heldSQL, q.name, receipt).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("delete from queue %s: %w", q.name, err)
	}
	err := q.db.Write(ctx, func(tx *sql.Tx) error {
		var (
			id    string
			owner sql.NullString
		)
		err := q.db.w.queryRow(ctx, tx, deleteMessageSQL, q.name, receipt).Scan(&id, &owner)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil || !owner.Valid:
			return err
		}
		return payload.Release(ctx, q.db.w.in(tx), owner.String, messageHolder(id))
	})
	if err != nil {
		return fmt.Errorf("delete from queue %s: %w", q.name, err)
	}
	return nil
}

// ChangeVisibility makes the message invisible for visibility from now (0:
// visible at once). A receipt that is not current gives ENOTFOUND.
func (q *Queue) ChangeVisibility(ctx context.Context, receipt string, visibility time.Duration) error {
	if visibility < 0 {
		return longrun.Errorf(longrun.EINVALID, "visibility %s must not be negative", visibility)
	}
	err := q.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := q.db.w.exec(ctx, tx, changeVisibilitySQL, toMillis(q.db.Now().Add(visibility)), q.name, receipt)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return longrun.Errorf(longrun.ENOTFOUND, "receipt is not current: the message was deleted or received again")
	})
	if err != nil {
		return fmt.Errorf("change visibility in queue %s: %w", q.name, err)
	}
	if visibility == 0 {
		q.db.notify(q.name)
	}
	return nil
}

// releaseInFlightSQL makes every received message visible again and forgets
// its receipt (its holder is dead: no Delete or ChangeVisibility of it may
// count any more).
const releaseInFlightSQL = `UPDATE queue_messages SET visible_at = ?, receipt = NULL
	WHERE queue = ? AND receipt IS NOT NULL AND visible_at > ?`

// ReleaseInFlight makes every message received from this queue and not yet
// deleted visible at once, and returns how many there were. Only the sole
// user of the DB may call it: `longrun dev`, holding its data directory's
// owner lock, at start-up, when every lease it finds was held by a process
// that is gone (a kill -9), so their jobs run again at once instead of
// after a visibility timeout. Receive counts are kept, as on SQS.
func (q *Queue) ReleaseInFlight(ctx context.Context) (int, error) {
	var n int64
	err := q.db.Write(ctx, func(tx *sql.Tx) error {
		now := toMillis(q.db.Now())
		res, err := q.db.w.exec(ctx, tx, releaseInFlightSQL, now, q.name, now)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release in-flight messages of queue %s: %w", q.name, err)
	}
	if n > 0 {
		q.db.notify(q.name)
	}
	return int(n), nil
}

// Defer gives a received message back unprocessed: it becomes visible again
// after delay, its receipt stops being current, and the receive that took it
// is not counted (so a message deferred many times never reaches the
// dead-letter queue for it). devapp's per-tenant fairness defers the
// messages of a tenant that holds its share of the workers.
func (q *Queue) Defer(ctx context.Context, receipt string, delay time.Duration) error {
	if delay < 0 {
		return longrun.Errorf(longrun.EINVALID, "delay %s must not be negative", delay)
	}
	err := q.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE queue_messages SET visible_at = ?, receive_count = max(receive_count - 1, 0), receipt = NULL
			WHERE queue = ? AND receipt = ?`, toMillis(q.db.Now().Add(delay)), q.name, receipt)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return longrun.Errorf(longrun.ENOTFOUND, "receipt is not current: the message was deleted or received again")
	})
	if err != nil {
		return fmt.Errorf("defer message in queue %s: %w", q.name, err)
	}
	if delay == 0 {
		q.db.notify(q.name)
	}
	return nil
}
