package longrun

import (
	"context"
	"encoding/json"
	"time"
)

// ExecutionStore keeps execution records. Adapters: internal/dynamostore (one
// DynamoDB table) and internal/sqlite. internal/storetest is the conformance
// suite both pass; its tests are the precise contract.
type ExecutionStore interface {
	// CreateExecution stores e, a new RUNNING execution with a fresh ID.
	// If e.IdempotencyKey is set and the same tenant used that key less than
	// IdempotencyWindow ago (measured against e.StartDate), nothing is written:
	// with the same RequestHash the earlier execution is returned with
	// replayed=true; with a different one the error has code ECONFLICT.
	CreateExecution(ctx context.Context, e *Execution) (stored *Execution, replayed bool, err error)

	// DeleteExecution removes a record (and its idempotency key) that was
	// created but whose orchestration could not be started, so the client's
	// retry with the same Idempotency-Key starts afresh.
	DeleteExecution(ctx context.Context, id string) error

	// GetExecution returns the execution with id. A tenant other than the
	// owner gets ENOTFOUND, exactly as for an unknown id. tenant "" skips the
	// check; only internal callers (notify, the worker) pass it.
	GetExecution(ctx context.Context, tenant, id string) (*Execution, error)

	// ListExecutions returns the tenant's executions, newest first, as
	// summaries: ID, ARN, Tenant, Name, Job, Status, StartDate and StopDate are
	// set; adapters may leave the rest empty (the DynamoDB list index
	// projects only these, since a record may be ~400 KB). GetExecution
	// reads a whole record.
	ListExecutions(ctx context.Context, tenant string, q ListQuery) (*ExecutionPage, error)

	// FinishExecution records the outcome of a RUNNING execution. It is
	// conditional, so of many concurrent or repeated calls exactly one
	// records: that call gets recorded=true. The others get the stored
	// record, unchanged, with recorded=false. Unknown id: ENOTFOUND.
	FinishExecution(ctx context.Context, id string, o Outcome) (e *Execution, recorded bool, err error)

	// SetProgress stores the latest progress of a RUNNING execution; on an
	// execution that has ended it does nothing and returns ENOTRUNNING.
	SetProgress(ctx context.Context, id string, p Progress) error

	// SaveDelivery replaces the execution's webhook delivery record.
	SaveDelivery(ctx context.Context, id string, d Delivery) error
}

// TenantStore keeps tenants, their webhook secrets and their API keys. API keys
// are stored only as hashes (see internal/auth).
type TenantStore interface {
	// PutTenant creates or replaces a tenant (used to create and to rotate secrets).
	PutTenant(ctx context.Context, t *Tenant) error
	// GetTenant returns a tenant, or ENOTFOUND.
	GetTenant(ctx context.Context, id string) (*Tenant, error)
	// PutAPIKey maps a key hash to a tenant.
	PutAPIKey(ctx context.Context, keyHash, tenant string) error
	// TenantForKey returns the tenant owning the key hash, or ENOTFOUND.
	TenantForKey(ctx context.Context, keyHash string) (string, error)
	// DeleteAPIKey revokes a key; an unknown hash gives ENOTFOUND.
	DeleteAPIKey(ctx context.Context, keyHash string) error
}

// Orchestrator runs executions: Step Functions on AWS (internal/sfnengine), the
// embedded ASL engine locally (internal/local).
type Orchestrator interface {
	// ExecutionARN returns the ARN the execution with id will have.
	ExecutionARN(id string) string
	// StartExecution starts the state machine with the execution id as the
	// execution name. Starting an id that is already running with the same
	// input succeeds and does nothing, so a crashed start can be retried.
	StartExecution(ctx context.Context, in StateInput) error
	// StopExecution stops a running execution; it ends ABORTED. Stopping one
	// that already ended returns ENOTRUNNING.
	StopExecution(ctx context.Context, arn, errName, cause string) error
	// Redeliver starts round `round` of an ended execution's webhook
	// delivery: the deliver state machine, in an execution named
	// longrun.DeliverName(executionID, round). Starting a round whose loop is
	// running does nothing and succeeds, so a retried caller never starts a
	// second loop beside the first; a round whose loop has ended gives
	// ENOTRUNNING (its name stays taken): start the next round instead.
	Redeliver(ctx context.Context, executionID string, round int) error
}

// TaskReporter completes the task tokens the state machine hands to workers.
// A token that is no longer valid (the task timed out, the execution was
// stopped, or the task was already completed) gives an error with ETASKGONE.
type TaskReporter interface {
	SendTaskSuccess(ctx context.Context, token string, output json.RawMessage) error
	SendTaskFailure(ctx context.Context, token, errName, cause string) error
	SendTaskHeartbeat(ctx context.Context, token string) error
}

// Message is one message taken from a Queue.
type Message struct {
	ID           string
	Body         string
	Receipt      string // handle for Delete and ChangeVisibility; valid for this receive only
	ReceiveCount int    // 1 on the first receive
	SentAt       time.Time
}

// Queue is a queue with SQS semantics: a received message is invisible for its
// visibility timeout, then comes back unless deleted; after the queue's
// maxReceiveCount receives it moves to the dead-letter queue. Adapters:
// internal/sqsqueue and internal/sqlite. internal/queuetest is the contract.
type Queue interface {
	Send(ctx context.Context, body string) error
	// Receive waits up to wait for at least one message and returns at most max.
	Receive(ctx context.Context, max int, wait, visibility time.Duration) ([]Message, error)
	Delete(ctx context.Context, receipt string) error
	ChangeVisibility(ctx context.Context, receipt string, visibility time.Duration) error
}

// Clock is the time longrun runs on: Now for records and deadlines, Until for
// waits. It is the one clock shape of the code base: the stores, the SQLite
// queue's long polls, the local engine's timers, the worker's tickers,
// limits and backoffs, notify, settle and the API all take one, so one fake
// clock, internal/fakeclock, drives them all in tests and nothing waits on
// the wall clock behind its back. Production uses SystemClock.
type Clock interface {
	Now() time.Time
	// Until returns a channel that is closed once the clock reaches t (at
	// once if it already has), and a stop func that releases the wait early.
	Until(t time.Time) (done <-chan struct{}, stop func())
}

// SleepUntil waits on c until t, or until ctx ends (then it returns ctx's
// error): the one context-aware sleep, for any clock.
func SleepUntil(ctx context.Context, c Clock, t time.Time) error {
	done, stop := c.Until(t)
	defer stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Until closes done when a time.Timer set for t fires.
func (SystemClock) Until(t time.Time) (<-chan struct{}, func()) {
	done := make(chan struct{})
	timer := time.AfterFunc(time.Until(t), func() { close(done) })
	return done, func() { timer.Stop() }
}
