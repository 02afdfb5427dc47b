package longrun

import (
	"encoding/json"
	"math"
	"time"
)

// Status is an execution's status, with Step Functions' own names.
type Status string

// The statuses an execution moves through. RUNNING is the only non-terminal one.
const (
	StatusRunning   Status = "RUNNING"
	StatusSucceeded Status = "SUCCEEDED"
	StatusFailed    Status = "FAILED"
	StatusTimedOut  Status = "TIMED_OUT"
	StatusAborted   Status = "ABORTED"
)

// Valid reports whether s is one of the five statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusRunning, StatusSucceeded, StatusFailed, StatusTimedOut, StatusAborted:
		return true
	}
	return false
}

// Terminal reports whether an execution with status s has ended.
func (s Status) Terminal() bool { return s.Valid() && s != StatusRunning }

// Execution is the record of one job run, owned by the tenant that started it.
// It is what describe returns; the orchestrator's own state is never read on the
// hot path.
type Execution struct {
	ID          string // executionId: a UUIDv7, also the Step Functions execution name
	ARN         string // executionArn
	Tenant      string // owner; other tenants never see the record
	Name        string // optional client-chosen label
	Job         string // the kind of job it runs (Registry); "" in records older than kinds
	Status      Status
	Input       json.RawMessage // the user's input, as posted
	Output      json.RawMessage // the job's output once SUCCEEDED
	Error       string          // error name once FAILED, TIMED_OUT or ABORTED
	Cause       string          // human-readable cause that goes with Error
	Progress    *Progress       // the job's latest progress report, while running
	CallbackURL string          // where the webhook goes; empty for none
	StartDate   time.Time
	StopDate    time.Time // zero while RUNNING
	Webhook     *Delivery // nil until the outcome is notified, or without CallbackURL

	// IdempotencyKey and RequestHash are set when the start request carried an
	// Idempotency-Key: a replay of the same key with the same hash within
	// IdempotencyWindow returns this execution; a different hash is a conflict.
	IdempotencyKey string
	RequestHash    string
}

// Outcome is how an execution ended: what notify records exactly once.
type Outcome struct {
	Status   Status // terminal
	Output   json.RawMessage
	Error    string
	Cause    string
	StopDate time.Time
}

// Progress is what a running job reports about itself.
type Progress struct {
	Percent   float64   `json:"percent"`
	Message   string    `json:"message,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// ListQuery selects a page of a tenant's executions, newest first.
type ListQuery struct {
	Status    Status // empty for all
	Job       string // a job kind; empty for all
	Limit     int    // 1..MaxListLimit
	NextToken string // opaque, from the previous page
}

// ExecutionPage is one page of executions and the token for the next one.
type ExecutionPage struct {
	Executions []Execution
	NextToken  string // empty on the last page
}

// TaskMessage is what the state machine's Work state puts on the jobs queue and
// the worker takes from it. The field names are the wire format.
type TaskMessage struct {
	TaskToken    string          `json:"taskToken"`
	ExecutionARN string          `json:"executionArn"`
	ExecutionID  string          `json:"executionId"`
	Input        json.RawMessage `json:"input"`
	// Job is the kind of job to run (Registry); empty means the default kind.
	Job string `json:"job,omitempty"`
	// Limits are the execution's (StateInput.Limits): the worker runs the
	// job for at most Limits.TimeoutSeconds from receipt. Absent (a message
	// sent by an older definition): no limit of the worker's own; the Work
	// state's TimeoutSeconds still ends the task.
	Limits *Limits `json:"limits,omitempty"`
}

// StateInput is the input every execution of the state machine starts with.
// The ids are passed in rather than read from the context object ($$), so the
// definition also runs on engines that do not model $$.Execution.
type StateInput struct {
	ExecutionID  string          `json:"executionId"`
	ExecutionARN string          `json:"executionArn"`
	Input        json.RawMessage `json:"input"`
	Limits       Limits          `json:"limits"`
	// Job is the kind of job to run; the Work state copies it into the
	// TaskMessage, so the worker runs the job the client asked for. Always
	// present ("" for the default kind): a JSONPath to a missing field is a
	// States.Runtime error.
	Job string `json:"job"`
	// BackstopSeconds is the Work state's TimeoutSeconds
	// (TimeoutSecondsPath): Step Functions' own timer, which starts when the
	// message is sent, so it only backstops a task no worker takes — the
	// job's limit plus the queue wait (Backstop). The job's own limit is
	// Limits.TimeoutSeconds, enforced by the worker from receipt. Absent
	// (a start function of an older release): the definition uses
	// Limits.TimeoutSeconds, as it did then.
	BackstopSeconds int `json:"backstopSeconds,omitempty"`
	// QueueURL is the queue the Work state sends the task to ("QueueUrl.$"):
	// the start function routes each execution by its kind's Timeout, so a
	// kind longer than the Lambda worker can run goes to the queue only
	// `longrun worker` reads (docs/sam.md, "Long jobs").
	// Absent: the jobs queue.
	QueueURL string `json:"queueUrl,omitempty"`
}

// Limits bound an execution's job. They come from configuration (template
// Parameters on AWS, template defaults locally) and the kind's JobOptions,
// never from clients, and travel in the state input, whose Work state copies
// them into the task message for the worker (docs/state-machine.md,
// "Liveness").
type Limits struct {
	// TimeoutSeconds is the job's own time limit: the worker that takes the
	// task runs the job (retries and backoff included) for at most this long
	// from the moment it received the message, then fails the task with
	// ErrNameJobTimeout. Time in the queue never counts; the Work state's
	// TimeoutSeconds is only a backstop (StateInput.BackstopSeconds).
	TimeoutSeconds int `json:"timeoutSeconds"`
	// HeartbeatSeconds is the workers' lease on a running job's message.
	HeartbeatSeconds int `json:"heartbeatSeconds"`
}

// DefaultQueueWait is how long a task may wait in the queue, by default,
// before its Work state gives up on it: a day, so only a queue nobody reads
// for that long fails jobs for waiting. On AWS the template Parameter
// MaxQueueWaitSeconds sets it.
const DefaultQueueWait = 24 * time.Hour

// Backstop is the Work state's TimeoutSeconds for a job limit of
// timeoutSeconds: that plus the queue wait (DefaultQueueWait when 0), in
// whole seconds. It is never shorter than the job's own limit, so a job
// taken at the last moment of its wait still has the whole limit.
func Backstop(timeoutSeconds int, queueWait time.Duration) int {
	if queueWait <= 0 {
		queueWait = DefaultQueueWait
	}
	return timeoutSeconds + int(math.Ceil(queueWait.Seconds()))
}

// NotifyRequest is the payload the state machines pass to notify
// (statemachine/*.asl.json). EventBridge status-change events reach notify too,
// in their own envelope.
type NotifyRequest struct {
	Action      string          `json:"action"` // NotifyFinalize or NotifyDeliver
	ExecutionID string          `json:"executionId"`
	Status      Status          `json:"status,omitempty"`  // finalize: SUCCEEDED or FAILED
	Output      json.RawMessage `json:"output,omitempty"`  // finalize SUCCEEDED: the job's output
	Failure     *TaskFailure    `json:"failure,omitempty"` // finalize FAILED: what Catch caught
}

// The notify actions.
const (
	NotifyFinalize = "finalize" // record the outcome, then make the first webhook attempt
	NotifyDeliver  = "deliver"  // make one more webhook attempt (the deliver state machine)
)

// TaskFailure is the error object a Catch puts at its ResultPath.
type TaskFailure struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// DeliverResult is notify's answer to a deliver request: done, or the RFC 3339
// time of the next attempt, which the deliver state machine waits for.
type DeliverResult struct {
	Done    bool   `json:"done"`
	RetryAt string `json:"retryAt"`
}
