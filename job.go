package longrun

import (
	"context"
	"encoding/json"
	"fmt"
)

// Job is the work a user writes: JSON input in, JSON output or an error out.
// ctx is cancelled when the execution is stopped or its task times out; a job
// that runs for long should watch it. report records progress, shown by
// describe; it never blocks for long and may be called as often as you like
// (the worker keeps the latest and stores it at most every few seconds).
type Job func(ctx context.Context, input json.RawMessage, report func(Progress)) (json.RawMessage, error)

// JobError is a job failure with an error name of the job's choosing. It
// becomes SendTaskFailure(Name, Cause) and, at the end, the execution's error
// and cause. Any other error is reported as "Job.Failed" with err.Error().
type JobError struct {
	Name  string
	Cause string
}

func (e *JobError) Error() string { return fmt.Sprintf("%s: %s", e.Name, e.Cause) }

// Error names the worker reports for failures that are not a JobError.
const (
	ErrNameJobFailed   = "Job.Failed"        // the job returned a plain error
	ErrNameJobPanic    = "Job.Panic"         // the job panicked
	ErrNameBadMessage  = "Job.BadMessage"    // the task message could not be decoded
	ErrNameBadOutput   = "Job.InvalidOutput" // the job returned output that is not JSON
	ErrNameStopped     = "Execution.Stopped" // the error a stop records
	ErrNameStartFailed = "Execution.StartFailed"
	ErrNameUnknownKind = "Job.UnknownKind" // the worker has no job of the task's kind
	// ErrNameJobTimeout: the job ran past its own time limit (the kind's
	// Timeout or the deployment's JobTimeoutSeconds), counted by the worker
	// from the moment it received the task, never from the send.
	ErrNameJobTimeout = "Job.Timeout"
)
