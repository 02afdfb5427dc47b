// Package settle finishes starts that a crash cut in two. On AWS a start is
// two steps that cannot share a transaction: the DynamoDB record, then
// StartExecution. The record is written with a start-pending marker that
// the start clears once StartExecution has succeeded (dynamostore); a start
// Lambda that dies between the two leaves the marker on a RUNNING record
// with nothing behind it. The Sweeper, run every minute (SettleFunction on
// a schedule), finds the records still marked a grace period after their
// start and settles each one:
//
//   - the state machine has an execution of that name (it started, the
//     marker's clear was lost): clear the marker; the execution's own end
//     records the outcome as for any other;
//   - it has none: start it, with the same input the start would have given
//     (StartExecution is idempotent by name for the same input), and clear
//     the marker;
//   - it has none and the start can no longer succeed (Step Functions
//     refuses it for good, or the record is older than GiveUpAfter): finish
//     the record FAILED with longrun.ErrNameStartFailed and a cause saying
//     why, and send its webhook; the marker is cleared only once the
//     delivery is under way, so a run that dies in between is repeated.
//
// Every step is idempotent and conditional (a record is finished only while
// RUNNING), so concurrent sweeps, and a sweep racing a client's replay of
// the start, agree. A run settles at most Limit records; the rest wait a
// minute.
package settle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/smithy-go"

	"github.com/longrun/longrun"
)

// Defaults of Config.
const (
	// DefaultGrace is how old a marked record must be before the sweep
	// touches it: well past the start function's timeout (10 s), so a start
	// still under way is never raced.
	DefaultGrace = 2 * time.Minute
	// DefaultGiveUpAfter is how long a start is retried: the Idempotency-Key
	// window, after which a client's retry would no longer find the record
	// either.
	DefaultGiveUpAfter = longrun.IdempotencyWindow
	// DefaultLimit bounds the records one run settles.
	DefaultLimit = 100
)

// Store is what the sweep needs of the execution store (dynamostore.Store).
type Store interface {
	// PendingStarts returns ids of up to limit records still marked
	// start-pending that started before before.
	PendingStarts(ctx context.Context, before time.Time, limit int) ([]string, error)
	// ConfirmStarted clears a record's start-pending marker.
	ConfirmStarted(ctx context.Context, id string) error
	GetExecution(ctx context.Context, tenant, id string) (*longrun.Execution, error)
	FinishExecution(ctx context.Context, id string, o longrun.Outcome) (*longrun.Execution, bool, error)
}

// Orchestrator is what the sweep needs of Step Functions (sfnengine.Engine).
type Orchestrator interface {
	// Started reports whether an execution named id exists, running or ended.
	Started(ctx context.Context, id string) (bool, error)
	StartExecution(ctx context.Context, in longrun.StateInput) error
}

// Config wires a Sweeper.
type Config struct {
	Store        Store
	Orchestrator Orchestrator
	// StateInput is the state machine's input for a record, as the start
	// builds it (api.StateInput with the deployment's limits and kinds).
	StateInput func(*longrun.Execution) longrun.StateInput
	// Ended sends the webhook of a record the sweep failed
	// (notify.Notifier.Ended).
	Ended       func(ctx context.Context, e *longrun.Execution, recorded bool) error
	Clock       longrun.Clock // nil: longrun.SystemClock
	Grace       time.Duration // 0: DefaultGrace
	GiveUpAfter time.Duration // 0: DefaultGiveUpAfter
	Limit       int           // 0: DefaultLimit
	Logger      *slog.Logger  // nil discards
}

// Sweeper settles records whose start was cut short.
type Sweeper struct {
	cfg Config
	log *slog.Logger
}

// New returns a Sweeper.
func New(cfg Config) *Sweeper {
	if cfg.Clock == nil {
		cfg.Clock = longrun.SystemClock{}
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = DefaultGiveUpAfter
	}
	if cfg.Limit <= 0 {
		cfg.Limit = DefaultLimit
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{cfg: cfg, log: log}
}

// Result counts what one run did.
type Result struct {
	Found     int `json:"found"`     // marked records past the grace period
	Confirmed int `json:"confirmed"` // had started: marker cleared
	Started   int `json:"started"`   // started by the sweep
	Failed    int `json:"failed"`    // finished FAILED (Execution.StartFailed)
	Skipped   int `json:"skipped"`   // left for the next run after an error
	Deferred  int `json:"deferred"`  // failed by a run that may still be sending its webhook
}

// Run settles up to Limit marked records older than the grace period. An
// error settling one record is logged and counted, and the others go on;
// only a failure to find the records is returned.
func (s *Sweeper) Run(ctx context.Context) (Result, error) {
	var res Result
	ids, err := s.cfg.Store.PendingStarts(ctx, s.cfg.Clock.Now().Add(-s.cfg.Grace), s.cfg.Limit)
	if err != nil {
		return res, fmt.Errorf("find pending starts: %w", err)
	}
	res.Found = len(ids)
	for _, id := range ids {
		outcome, err := s.Settle(ctx, id)
		if err != nil {
			res.Skipped++
			s.log.ErrorContext(ctx, "settle a pending start (the next run retries)", "err", err, "execution_id", id)
			continue
		}
		switch outcome {
		case Confirmed:
			res.Confirmed++
		case Started:
			res.Started++
		case Failed:
			res.Failed++
		case Deferred:
			res.Deferred++
		}
	}
	if res.Found > 0 {
		s.log.InfoContext(ctx, "pending starts settled", "found", res.Found, "confirmed", res.Confirmed,
			"started", res.Started, "failed", res.Failed, "skipped", res.Skipped, "deferred", res.Deferred)
	}
	return res, nil
}

// Outcome is what Settle did with one record.
type Outcome string

// Settle's outcomes.
const (
	Confirmed Outcome = "confirmed" // it had started (or ended): marker cleared
	Started   Outcome = "started"   // the sweep started it
	Failed    Outcome = "failed"    // it can no longer start: finished FAILED
	Deferred  Outcome = "deferred"  // failed a moment ago by another run: left to it
)

// Settle settles the record id, whatever its marker says: the sweep calls it
// for each record it finds.
func (s *Sweeper) Settle(ctx context.Context, id string) (Outcome, error) {
	e, err := s.cfg.Store.GetExecution(ctx, "", id)
	if longrun.IsCode(err, longrun.ENOTFOUND) {
		return Confirmed, nil // deleted since (a start rolled back): nothing to settle
	}
	if err != nil {
		return "", fmt.Errorf("read execution %s: %w", id, err)
	}
	if e.Status != longrun.StatusRunning {
		if e.Status == longrun.StatusFailed && e.Error == longrun.ErrNameStartFailed {
			// A start a sweep failed, whose webhook may not have got under
			// way (the run died in between): ensure it, then clear. Not
			// while the run that failed it may still be sending it.
			if s.cfg.Clock.Now().Sub(e.StopDate) < s.cfg.Grace {
				return Deferred, nil
			}
			return Failed, s.ended(ctx, e, false)
		}
		return Confirmed, s.confirm(ctx, id)
	}
	started, err := s.cfg.Orchestrator.Started(ctx, id)
	if err != nil {
		return "", err
	}
	if started {
		return Confirmed, s.confirm(ctx, id)
	}
	now := s.cfg.Clock.Now()
	if age := now.Sub(e.StartDate); age > s.cfg.GiveUpAfter {
		return s.fail(ctx, e, fmt.Sprintf("the state machine was not started: the start was cut short %s ago, past the %s in which it is retried", age.Round(time.Second), s.cfg.GiveUpAfter))
	}
	err = s.cfg.Orchestrator.StartExecution(ctx, s.cfg.StateInput(e))
	switch {
	case err == nil, longrun.IsCode(err, longrun.EDUPLICATE):
		// EDUPLICATE: an execution of that name appeared meanwhile (a
		// client's replay started it): started all the same.
		if err := s.confirm(ctx, id); err != nil {
			return "", err
		}
		if err == nil {
			s.log.InfoContext(ctx, "started an execution whose start was cut short", "execution_id", id)
		}
		return Started, nil
	case permanent(err):
		return s.fail(ctx, e, fmt.Sprintf("the state machine refused the start: %v", err))
	default:
		return "", fmt.Errorf("start execution %s: %w", id, err)
	}
}

func (s *Sweeper) confirm(ctx context.Context, id string) error {
	if err := s.cfg.Store.ConfirmStarted(ctx, id); err != nil {
		return fmt.Errorf("clear start-pending marker of %s: %w", id, err)
	}
	return nil
}

// fail finishes e FAILED (only while it is RUNNING) and sends its webhook.
func (s *Sweeper) fail(ctx context.Context, e *longrun.Execution, cause string) (Outcome, error) {
	o := longrun.Outcome{
		Status: longrun.StatusFailed, StopDate: s.cfg.Clock.Now(),
		Error: longrun.ErrNameStartFailed, Cause: longrun.Truncate(cause, longrun.MaxCauseLength),
	}
	ended, recorded, err := s.cfg.Store.FinishExecution(ctx, e.ID, o)
	if err != nil {
		return "", fmt.Errorf("fail execution %s: %w", e.ID, err)
	}
	if recorded {
		s.log.WarnContext(ctx, "failed an execution whose start was cut short", "execution_id", e.ID, "cause", o.Cause)
	}
	if ended.Status != longrun.StatusFailed || ended.Error != longrun.ErrNameStartFailed {
		return Confirmed, s.confirm(ctx, e.ID) // it ended another way first
	}
	return Failed, s.ended(ctx, ended, recorded)
}

// ended sends the webhook of a start the sweep failed, then clears the
// marker: until the delivery is under way the record stays marked, so a run
// that dies in between leaves it for the next one, which comes back here.
func (s *Sweeper) ended(ctx context.Context, e *longrun.Execution, recorded bool) error {
	if s.cfg.Ended != nil {
		if err := s.cfg.Ended(ctx, e, recorded); err != nil {
			return fmt.Errorf("webhook of execution %s: %w", e.ID, err)
		}
	}
	return s.confirm(ctx, e.ID)
}

// permanent reports whether a StartExecution error will not go away on a
// retry: Step Functions refused the request itself (a client fault that is
// not throttling), such as StateMachineDoesNotExist or InvalidExecutionInput.
func permanent(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorFault() != smithy.FaultClient {
		return false
	}
	switch apiErr.ErrorCode() {
	case "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "ExecutionLimitExceeded",
		"AccessDeniedException", "ExpiredTokenException", "UnrecognizedClientException":
		// Throttling and the limit of open executions pass; a role or
		// credentials problem is the deployment's to fix, not the job's.
		return false
	}
	return true
}
