package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/payload"
)

// ExecutionStore is longrun.ExecutionStore on the executions and
// idempotency_keys tables.
type ExecutionStore struct {
	db *DB
}

var _ longrun.ExecutionStore = (*ExecutionStore)(nil)

// NewExecutionStore returns the execution store of db.
func NewExecutionStore(db *DB) *ExecutionStore { return &ExecutionStore{db: db} }

const executionColumns = `id, tenant, arn, name, status, input, output, error, cause, progress,
	callback_url, start_date, stop_date, webhook, idempotency_key, request_hash, job`

// executionSelect reads executionColumns; a large input or output is a
// ref to payload chunks (see storedPayload), or, written before those, in
// execution_payloads.
const executionSelect = `id, tenant, arn, name, status,
	coalesce(input, (SELECT data FROM execution_payloads p WHERE p.id = executions.id AND p.kind = 'input')),
	coalesce(output, (SELECT data FROM execution_payloads p WHERE p.id = executions.id AND p.kind = 'output')),
	error, cause, progress, callback_url, start_date, stop_date, webhook, idempotency_key, request_hash, job`

// Large inputs and outputs (over payload.Inline) are stored once per file
// as payload chunks (internal/payload), owned by the execution's ARN: in
// longrun dev the engine and the task message of the same execution store
// the same bytes under the same owner, so the record adds a ref and a hold,
// not a copy. The executions row holds the ref: SQLite rewrites a whole row
// on every UPDATE (progress, finish, webhook attempts), and a ref is small.

// payloadOwner is the owner of the record's payload chunks.
func payloadOwner(id, arn string) string {
	if arn != "" {
		return arn
	}
	return "execution:" + id
}

// recordHolder is the record's hold on its owner's chunks.
func recordHolder(id string) string { return "record:" + id }

// storedPayload is what the executions row holds of p: p, or a ref to its
// chunks, queued in c.
func storedPayload(c *payload.Chunks, id, arn string, p json.RawMessage) any {
	if len(p) == 0 {
		return nil
	}
	return c.RefHeld(payloadOwner(id, arn), recordHolder(id), p)
}

// writeChunks writes what c queued, in tx.
func (s *ExecutionStore) writeChunks(ctx context.Context, tx *sql.Tx, c *payload.Chunks) error {
	defer c.Close()
	return c.Write(ctx, func(query string) (*sql.Stmt, error) { return s.db.w.in(tx).PrepareContext(ctx, query) })
}

// resolve reads e's payload refs back from q, a transaction.
func resolve(ctx context.Context, q payload.Querier, e *longrun.Execution) error {
	if !payload.IsRef(string(e.Input)) && !payload.IsRef(string(e.Output)) {
		return nil
	}
	r := payload.NewReader(ctx, q)
	defer r.Close()
	owner := payloadOwner(e.ID, e.ARN)
	var err error
	if e.Input, err = r.Payload(owner, string(e.Input)); err != nil {
		return fmt.Errorf("input of execution %s: %w", e.ID, err)
	}
	if e.Output, err = r.Payload(owner, string(e.Output)); err != nil {
		return fmt.Errorf("output of execution %s: %w", e.ID, err)
	}
	return nil
}

// hasRef reports whether e, as scanned, holds a ref to resolve.
func hasRef(e *longrun.Execution) bool {
	return payload.IsRef(string(e.Input)) || payload.IsRef(string(e.Output))
}

// releaseRecord drops the hold of the deleted record id on its chunks.
func (s *ExecutionStore) releaseRecord(ctx context.Context, tx *sql.Tx, id, arn string) error {
	return payload.Release(ctx, s.db.w.in(tx), payloadOwner(id, arn), recordHolder(id))
}

// The statements of the store, prepared once (see prepared).
const (
	getExecutionSQL    = `SELECT ` + executionSelect + ` FROM executions WHERE id = ?`
	idempotencyKeySQL  = `SELECT execution_id, request_hash, start_date FROM idempotency_keys WHERE tenant = ? AND key = ?`
	insertExecutionSQL = `INSERT INTO executions (` + executionColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING ` + executionColumns
	insertIdempotencySQL = `INSERT OR REPLACE INTO idempotency_keys (tenant, key, execution_id, request_hash, start_date) VALUES (?, ?, ?, ?, ?)`
	deleteExecutionSQL   = `DELETE FROM executions WHERE id = ? RETURNING arn`
	finishExecutionSQL   = `UPDATE executions SET status = ?, output = ?, error = ?, cause = ?, stop_date = ?
			WHERE id = ? AND status = ? RETURNING ` + executionSelect
	arnOfSQL        = `SELECT arn FROM executions WHERE id = ?`
	tenantOfSQL     = `SELECT tenant FROM executions WHERE id = ?`
	setProgressSQL  = `UPDATE executions SET progress = ? WHERE id = ? AND status = ?`
	saveDeliverySQL = `UPDATE executions SET webhook = ? WHERE id = ?`
)

// listExecutionsSQL is ListExecutions' query with or without a status, a
// job kind and a next token.
func listExecutionsSQL(status, job, after bool) string {
	query := `SELECT ` + executionSelect + ` FROM executions WHERE tenant = ?`
	if status {
		query += ` AND status = ?`
	}
	if job {
		query += ` AND job = ?`
	}
	if after {
		query += ` AND id < ?`
	}
	// One more than the page tells whether there is a next page.
	return query + ` ORDER BY id DESC LIMIT ?`
}

type rowScanner interface{ Scan(dest ...any) error }

func scanExecution(row rowScanner) (*longrun.Execution, error) {
	var (
		e                 longrun.Execution
		input, output     sql.NullString
		progress, webhook sql.NullString
		startDate         int64
		stopDate          sql.NullInt64
		status            string
	)
	if err := row.Scan(&e.ID, &e.Tenant, &e.ARN, &e.Name, &status, &input, &output, &e.Error, &e.Cause, &progress,
		&e.CallbackURL, &startDate, &stopDate, &webhook, &e.IdempotencyKey, &e.RequestHash, &e.Job); err != nil {
		return nil, err
	}
	e.Status = longrun.Status(status)
	if input.Valid {
		e.Input = json.RawMessage(input.String)
	}
	if output.Valid {
		e.Output = json.RawMessage(output.String)
	}
	e.StartDate = fromMillis(startDate)
	e.StopDate = fromNullMillis(stopDate)
	if progress.Valid {
		e.Progress = new(longrun.Progress)
		if err := json.Unmarshal([]byte(progress.String), e.Progress); err != nil {
			return nil, fmt.Errorf("decode progress of %s: %w", e.ID, err)
		}
	}
	if webhook.Valid {
		var d delivery
		if err := json.Unmarshal([]byte(webhook.String), &d); err != nil {
			return nil, fmt.Errorf("decode webhook of %s: %w", e.ID, err)
		}
		e.Webhook = d.domain()
	}
	return &e, nil
}

func nullJSON(raw json.RawMessage) sql.NullString {
	if len(raw) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: string(raw), Valid: true}
}

func getExecution(ctx context.Context, p prepared, tx *sql.Tx, id string) (*longrun.Execution, error) {
	e, err := executionOf(p.queryRow(ctx, tx, getExecutionSQL, id), id)
	if err != nil {
		return nil, err
	}
	if err := resolve(ctx, p.in(tx), e); err != nil {
		return nil, err
	}
	return e, nil
}

// executionOf is the execution of row, a result of getExecutionSQL.
func executionOf(row *sql.Row, id string) (*longrun.Execution, error) {
	e, err := scanExecution(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get execution %s: %w", id, err)
	}
	return e, nil
}

// CreateExecution stores e, or replays the execution its idempotency key
// started within longrun.IdempotencyWindow of e.StartDate. e.ID must be set
// (the orchestrator's ARN is derived from it); a taken id gives EDUPLICATE.
func (s *ExecutionStore) CreateExecution(ctx context.Context, e *longrun.Execution) (*longrun.Execution, bool, error) {
	if e.ID == "" || e.Tenant == "" {
		return nil, false, longrun.Errorf(longrun.EINVALID, "an execution needs an id and a tenant")
	}
	var (
		stored   *longrun.Execution
		replayed bool
	)
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		stored, replayed, err = s.CreateExecutionTx(ctx, tx, e)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("create execution %s: %w", e.ID, err)
	}
	return stored, replayed, nil
}

// CreateExecutionTx is CreateExecution inside tx, a transaction of the DB's
// Write: the local engine runs it in the transaction that starts the
// execution, so the record and its start commit together.
func (s *ExecutionStore) CreateExecutionTx(ctx context.Context, tx *sql.Tx, e *longrun.Execution) (stored *longrun.Execution, replayed bool, err error) {
	return s.CreatePreparedTx(ctx, tx, e, nil)
}

// Payloads is an execution's large input and output already cut into
// payload chunks (PreparePayloads), so that the hashing is not done while
// a transaction holds the writer.
type Payloads struct {
	c             *payload.Chunks
	input, output any
}

// PreparePayloads cuts e's large input and output into chunks for
// CreatePreparedTx, outside any transaction. e must not change meanwhile.
func (s *ExecutionStore) PreparePayloads(e *longrun.Execution) *Payloads {
	c := payload.NewChunks(recordHolder(e.ID))
	return &Payloads{c: c, input: storedPayload(c, e.ID, e.ARN, e.Input), output: storedPayload(c, e.ID, e.ARN, e.Output)}
}

// CreatePreparedTx is CreateExecutionTx with e's payloads prepared by
// PreparePayloads (nil: prepared here). The local engine's start calls it
// in its transaction, the chunks prepared by the API's goroutine; it may
// run again with the same p if the transaction is retried.
func (s *ExecutionStore) CreatePreparedTx(ctx context.Context, tx *sql.Tx, e *longrun.Execution, p *Payloads) (stored *longrun.Execution, replayed bool, err error) {
	if e.ID == "" || e.Tenant == "" {
		return nil, false, longrun.Errorf(longrun.EINVALID, "an execution needs an id and a tenant")
	}
	if e.IdempotencyKey != "" {
		prev, ok, err := s.replay(ctx, s.db.w.queryRow(ctx, tx, idempotencyKeySQL, e.Tenant, e.IdempotencyKey), e)
		if err != nil || ok {
			if ok {
				prev, err = getExecution(ctx, s.db.w, tx, prev.ID)
			}
			return prev, err == nil, err
		}
	}
	// RETURNING gives the stored record (times at the precision kept)
	// without reading it back; its payloads are e's.
	if p == nil {
		p = s.PreparePayloads(e)
	}
	created, err := scanExecution(s.db.w.queryRow(ctx, tx, insertExecutionSQL,
		e.ID, e.Tenant, e.ARN, e.Name, string(e.Status), p.input, p.output, e.Error, e.Cause, nil,
		e.CallbackURL, toMillis(e.StartDate), nullMillis(e.StopDate), nil, e.IdempotencyKey, e.RequestHash, e.Job))
	if isConstraint(err) {
		return nil, false, longrun.Errorf(longrun.EDUPLICATE, "execution %s already exists", e.ID)
	}
	if err != nil {
		return nil, false, fmt.Errorf("insert execution: %w", err)
	}
	if err := s.writeChunks(ctx, tx, p.c); err != nil {
		return nil, false, fmt.Errorf("insert payloads of execution %s: %w", e.ID, err)
	}
	created.Input, created.Output = e.Input, e.Output
	if e.IdempotencyKey != "" {
		if _, err := s.db.w.exec(ctx, tx, insertIdempotencySQL,
			e.Tenant, e.IdempotencyKey, e.ID, e.RequestHash, toMillis(e.StartDate)); err != nil {
			return nil, false, fmt.Errorf("insert idempotency key: %w", err)
		}
	}
	return created, false, nil
}

// Replayed looks, without writing, for the execution e's idempotency key
// started within longrun.IdempotencyWindow: ok with it when e replays it,
// ECONFLICT when the key was used with another request, neither when e is
// new. A caller that must write e anyway (CreateExecutionTx) checks again in
// its transaction; this only spares it a transaction that would be undone.
func (s *ExecutionStore) Replayed(ctx context.Context, e *longrun.Execution) (*longrun.Execution, bool, error) {
	if e.IdempotencyKey == "" {
		return nil, false, nil
	}
	prev, ok, err := s.replay(ctx, s.db.reader.QueryRowContext(ctx, idempotencyKeySQL, e.Tenant, e.IdempotencyKey), e)
	if err != nil || !ok {
		return nil, false, err
	}
	stored, err := s.read(ctx, prev.ID)
	if longrun.IsCode(err, longrun.ENOTFOUND) {
		return nil, false, nil // expired meanwhile: e is new
	}
	return stored, err == nil, err
}

// replay reads row, a result of idempotencyKeySQL: ok (with the earlier
// execution's id) when e replays it, ECONFLICT for another request within
// the window.
func (s *ExecutionStore) replay(_ context.Context, row *sql.Row, e *longrun.Execution) (*longrun.Execution, bool, error) {
	var (
		prevID, prevHash string
		prevStart        int64
	)
	err := row.Scan(&prevID, &prevHash, &prevStart)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("look up idempotency key: %w", err)
	case e.StartDate.Sub(fromMillis(prevStart)) >= longrun.IdempotencyWindow:
		return nil, false, nil
	case prevHash != e.RequestHash:
		return nil, false, longrun.Errorf(longrun.ECONFLICT, "Idempotency-Key %q was used with a different request within %s", e.IdempotencyKey, longrun.IdempotencyWindow)
	}
	return &longrun.Execution{ID: prevID}, true, nil
}

// DeleteExecution removes the execution and frees its idempotency key.
// Deleting an unknown id does nothing.
func (s *ExecutionStore) DeleteExecution(ctx context.Context, id string) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		var arn string
		err := s.db.w.queryRow(ctx, tx, deleteExecutionSQL, id).Scan(&arn)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return s.releaseRecord(ctx, tx, id, arn)
	})
	if err != nil {
		return fmt.Errorf("delete execution %s: %w", id, err)
	}
	return nil
}

// read reads the execution id on a reader: one statement, and a read
// transaction only when it has payload chunks to join, which must be read
// in the snapshot the row was read in.
func (s *ExecutionStore) read(ctx context.Context, id string) (*longrun.Execution, error) {
	e, err := executionOf(s.db.r.row(ctx, s.db.reader, getExecutionSQL, id), id)
	if err == nil && hasRef(e) {
		err = s.db.Read(ctx, func(tx *sql.Tx) error {
			var err error
			e, err = getExecution(ctx, s.db.r, tx, id)
			return err
		})
	}
	return e, err
}

// GetExecution returns the execution; another tenant's is ENOTFOUND.
func (s *ExecutionStore) GetExecution(ctx context.Context, tenant, id string) (*longrun.Execution, error) {
	e, err := s.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if tenant != "" && e.Tenant != tenant {
		return nil, longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", id)
	}
	return e, nil
}

// TenantOf is the tenant of execution id, read alone: longrun dev's worker
// queue asks it for every task message (the per-tenant share), and
// GetExecution would read the whole record, its payloads included.
func (s *ExecutionStore) TenantOf(ctx context.Context, id string) (string, error) {
	var tenant string
	switch err := s.db.r.row(ctx, s.db.reader, tenantOfSQL, id).Scan(&tenant); {
	case errors.Is(err, sql.ErrNoRows):
		return "", longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", id)
	case err != nil:
		return "", fmt.Errorf("tenant of execution %s: %w", id, err)
	}
	return tenant, nil
}

// The next token is the last id of the page, encoded so clients treat it as opaque.
const tokenPrefix = "v1:"

func encodeToken(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + lastID))
}

func decodeToken(token string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	id, ok := strings.CutPrefix(string(raw), tokenPrefix)
	if err != nil || !ok || uuid.Validate(id) != nil {
		return "", longrun.Errorf(longrun.EINVALID, "nextToken is not one this API returned")
	}
	return id, nil
}

// ListExecutions returns a page of the tenant's executions, newest first (id
// descending). A Limit outside 1..MaxListLimit is taken as MaxListLimit.
func (s *ExecutionStore) ListExecutions(ctx context.Context, tenant string, q longrun.ListQuery) (*longrun.ExecutionPage, error) {
	limit := q.Limit
	if limit < 1 || limit > longrun.MaxListLimit {
		limit = longrun.MaxListLimit
	}
	if q.Status != "" && !q.Status.Valid() {
		return nil, longrun.Errorf(longrun.EINVALID, "status %q is not one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED", q.Status)
	}
	args := []any{tenant}
	if q.Status != "" {
		args = append(args, string(q.Status))
	}
	if q.Job != "" {
		args = append(args, q.Job)
	}
	if q.NextToken != "" {
		after, err := decodeToken(q.NextToken)
		if err != nil {
			return nil, err
		}
		args = append(args, after)
	}
	args = append(args, limit+1)
	query := listExecutionsSQL(q.Status != "", q.Job != "", q.NextToken != "")

	page := &longrun.ExecutionPage{}
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		rows, err := s.db.r.query(ctx, tx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanExecution(rows)
			if err != nil {
				return err
			}
			page.Executions = append(page.Executions, *e)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range page.Executions {
			if err := resolve(ctx, s.db.r.in(tx), &page.Executions[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list executions of %s: %w", tenant, err)
	}
	if len(page.Executions) > limit {
		page.Executions = page.Executions[:limit]
		page.NextToken = encodeToken(page.Executions[limit-1].ID)
	}
	return page, nil
}

// FinishExecution records o if the execution is still RUNNING. The update
// and the read of the result happen in one write transaction, so of any
// number of callers exactly one records.
func (s *ExecutionStore) FinishExecution(ctx context.Context, id string, o longrun.Outcome) (*longrun.Execution, bool, error) {
	if !o.Status.Terminal() {
		return nil, false, longrun.Errorf(longrun.EINVALID, "outcome status %q is not terminal", o.Status)
	}
	var (
		e        *longrun.Execution
		recorded bool
	)
	// A large output is cut here, not while the transaction holds the
	// writer; its owner is the record's ARN, which never changes (the
	// transaction checks it, and cuts again if it is not the one read).
	var pre *cutOutput
	if len(o.Output) > payload.Inline {
		var arn string
		if err := s.db.r.row(ctx, s.db.reader, arnOfSQL, id).Scan(&arn); err == nil {
			c := payload.NewChunks(recordHolder(id))
			pre = &cutOutput{arn: arn, c: c, stored: storedPayload(c, id, arn, o.Output)}
		}
	}
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		e, recorded, err = s.finishTx(ctx, tx, id, o, pre)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("finish execution %s: %w", id, err)
	}
	return e, recorded, nil
}

// cutOutput is an outcome's large output cut into the chunks of the owner
// arn before the transaction.
type cutOutput struct {
	arn    string
	c      *payload.Chunks
	stored any
}

// FinishExecutionTx is FinishExecution inside tx, a transaction of the DB's
// Write: the local engine records a stop in the transaction that stops the
// execution, so the two agree.
func (s *ExecutionStore) FinishExecutionTx(ctx context.Context, tx *sql.Tx, id string, o longrun.Outcome) (e *longrun.Execution, recorded bool, err error) {
	return s.finishTx(ctx, tx, id, o, nil)
}

// finishTx is FinishExecutionTx with the output already cut (pre, if not
// nil).
func (s *ExecutionStore) finishTx(ctx context.Context, tx *sql.Tx, id string, o longrun.Outcome, pre *cutOutput) (e *longrun.Execution, recorded bool, err error) {
	if !o.Status.Terminal() {
		return nil, false, longrun.Errorf(longrun.EINVALID, "outcome status %q is not terminal", o.Status)
	}
	// RETURNING: the one statement both records and reads, unless the
	// execution has ended already (or does not exist).
	var output any = nullJSON(o.Output)
	c := payload.NewChunks(recordHolder(id))
	if len(o.Output) > payload.Inline {
		// The chunks' owner is the record's ARN: read before the update.
		var arn string
		switch err := s.db.w.queryRow(ctx, tx, arnOfSQL, id).Scan(&arn); {
		case errors.Is(err, sql.ErrNoRows):
			return nil, false, longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", id)
		case err != nil:
			return nil, false, fmt.Errorf("get execution %s: %w", id, err)
		}
		if pre != nil && pre.arn == arn {
			c, output = pre.c, pre.stored
		} else {
			output = storedPayload(c, id, arn, o.Output)
		}
	}
	e, err = scanExecution(s.db.w.queryRow(ctx, tx, finishExecutionSQL,
		string(o.Status), output, o.Error, o.Cause, nullMillis(o.StopDate), id, string(longrun.StatusRunning)))
	recorded = err == nil
	if recorded {
		if err := s.writeChunks(ctx, tx, c); err != nil {
			return nil, false, fmt.Errorf("insert output of execution %s: %w", id, err)
		}
		e.Output = o.Output
		if err := resolve(ctx, s.db.w.in(tx), e); err != nil {
			return nil, false, err
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		e, err = getExecution(ctx, s.db.w, tx, id)
	}
	return e, recorded, err
}

// SetProgress stores p on a RUNNING execution; ENOTRUNNING once it ended.
func (s *ExecutionStore) SetProgress(ctx context.Context, id string, p longrun.Progress) error {
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode progress of %s: %w", id, err)
	}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := s.db.w.exec(ctx, tx, setProgressSQL,
			string(doc), id, string(longrun.StatusRunning))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		e, err := getExecution(ctx, s.db.w, tx, id)
		if err != nil {
			return err
		}
		return longrun.Errorf(longrun.ENOTRUNNING, "execution %s has ended (%s)", id, e.Status)
	})
	if err != nil {
		return fmt.Errorf("set progress of %s: %w", id, err)
	}
	return nil
}

// SaveDelivery replaces the execution's webhook delivery record.
func (s *ExecutionStore) SaveDelivery(ctx context.Context, id string, d longrun.Delivery) error {
	doc, err := json.Marshal(fromDelivery(d))
	if err != nil {
		return fmt.Errorf("encode delivery of %s: %w", id, err)
	}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := s.db.w.exec(ctx, tx, saveDeliverySQL, string(doc), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", id)
	})
	if err != nil {
		return fmt.Errorf("save delivery of %s: %w", id, err)
	}
	return nil
}

// SaveDeliveryIf saves d only if the stored delivery is still in prev's
// round and state, and gives ECONFLICT otherwise: a redeliver claims its
// round this way, so of concurrent redelivers of one execution exactly one
// starts a round.
func (s *ExecutionStore) SaveDeliveryIf(ctx context.Context, id string, prev, d longrun.Delivery) error {
	doc, err := json.Marshal(fromDelivery(d))
	if err != nil {
		return fmt.Errorf("encode delivery of %s: %w", id, err)
	}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE executions SET webhook = ?
			WHERE id = ? AND coalesce(json_extract(webhook, '$.round'), 0) = ? AND json_extract(webhook, '$.state') = ?`,
			string(doc), id, prev.Round, string(prev.State))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM executions WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", id)
		}
		return longrun.Errorf(longrun.ECONFLICT, "the delivery of execution %s changed meanwhile", id)
	})
	if err != nil {
		return fmt.Errorf("save delivery of %s: %w", id, err)
	}
	return nil
}

// StalledDeliveries returns the ids of up to limit executions whose webhook
// delivery is pending with its next attempt due before before: with
// before = now - delivery.StallAfter, the deliveries whose loop has ended
// without delivering.
func (s *ExecutionStore) StalledDeliveries(ctx context.Context, before time.Time, limit int) ([]string, error) {
	var ids []string
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM executions
			WHERE stop_date IS NOT NULL AND webhook IS NOT NULL
			  AND json_extract(webhook, '$.state') = ? AND julianday(json_extract(webhook, '$.nextAttempt')) < julianday(?)
			LIMIT ?`, string(longrun.DeliveryPending), before.UTC().Format(time.RFC3339Nano), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("stalled deliveries: %w", err)
	}
	return ids, nil
}

// DeleteEnded deletes up to limit executions that ended before before,
// oldest first, with their idempotency keys: the retention sweep of
// `longrun dev --retention`. An execution whose webhook is still being
// delivered is kept until its delivery ends. It returns how many it deleted.
func (s *ExecutionStore) DeleteEnded(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int64
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `DELETE FROM executions WHERE id IN (
			SELECT id FROM executions
			WHERE stop_date IS NOT NULL AND stop_date < ?
			  AND (webhook IS NULL OR json_extract(webhook, '$.state') <> ?)
			ORDER BY stop_date LIMIT ?) RETURNING id, arn`, toMillis(before), string(longrun.DeliveryPending), limit)
		if err != nil {
			return err
		}
		var deleted [][2]string
		for rows.Next() {
			var id, arn string
			if err := rows.Scan(&id, &arn); err != nil {
				rows.Close()
				return err
			}
			deleted = append(deleted, [2]string{id, arn})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range deleted {
			if err := s.releaseRecord(ctx, tx, d[0], d[1]); err != nil {
				return err
			}
		}
		n = int64(len(deleted))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete executions ended before %s: %w", before.Format(time.RFC3339), err)
	}
	return int(n), nil
}
