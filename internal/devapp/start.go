package devapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/api"
	"github.com/longrun/longrun/internal/local"
	"github.com/longrun/longrun/internal/sqlite"
)

// starter writes a new execution's record in the very transaction in which
// the engine starts it (they share one SQLite file): a crash between the two
// steps of a start cannot exist, so no RUNNING record is ever left without an
// execution behind it (docs/local-engine.md, "Starts that cannot orphan").
type starter struct {
	store      *sqlite.ExecutionStore
	engine     *local.Engine
	maxRunning int // admission control: the bound on running executions; negative for none
}

// DefaultMaxRunning is the default bound on running executions. Each costs
// memory (~a few KiB) and a row until it ends; the bound keeps a start rate
// above what the workers finish from growing both until jobs time out.
const DefaultMaxRunning = 10000

var (
	_ api.RecordStarter = starter{}
	_ api.RecordStopper = starter{}
)

// errReplayed undoes a start whose Idempotency-Key turned out, inside the
// transaction, to replay an earlier execution (a concurrent request with
// the same key committed first).
var errReplayed = errors.New("idempotent replay")

func (s starter) CreateAndStart(ctx context.Context, e *longrun.Execution, in longrun.StateInput) (*longrun.Execution, bool, error) {
	// Most replays are seen here, without undoing an engine transaction.
	if prev, ok, err := s.store.Replayed(ctx, e); err != nil || ok {
		return prev, ok, err
	}
	if n := s.engine.Running(); s.maxRunning >= 0 && n >= s.maxRunning {
		return nil, false, longrun.Errorf(longrun.ETHROTTLED,
			"longrun dev has %d executions running, its bound (--max-running %d): retry after the Retry-After seconds, when some have ended",
			n, s.maxRunning)
	}
	var stored *longrun.Execution
	// A large input is cut into payload chunks here, not in the engine's
	// transaction, which holds the writer and the engine's goroutine.
	payloads := s.store.PreparePayloads(e)
	err := s.engine.StartExecutionWith(ctx, in, func(ctx context.Context, tx *sql.Tx) error {
		created, replayed, err := s.store.CreatePreparedTx(ctx, tx, e, payloads)
		if err != nil {
			return err
		}
		stored = created
		if replayed {
			return errReplayed
		}
		return nil
	})
	switch {
	case errors.Is(err, errReplayed):
		return stored, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("create and start execution %s: %w", e.ID, err)
	}
	return stored, false, nil
}

// StopAndRecord stops the execution and records ABORTED in one engine
// transaction. If the record has ended meanwhile (notify's Finalize recorded
// the job's outcome before the state machine ended), nothing is stopped:
// describe, the history and the webhook all keep that outcome.
func (s starter) StopAndRecord(ctx context.Context, e *longrun.Execution, o longrun.Outcome) (*longrun.Execution, error) {
	var stopped *longrun.Execution
	err := s.engine.StopExecutionWith(ctx, e.ARN, o.Error, o.Cause, func(ctx context.Context, tx *sql.Tx) error {
		rec, recorded, err := s.store.FinishExecutionTx(ctx, tx, e.ID, o)
		if err != nil {
			return err
		}
		if !recorded {
			return longrun.Errorf(longrun.ENOTRUNNING, "execution %s has already ended with status %s", e.ID, rec.Status)
		}
		stopped = rec
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stop execution %s: %w", e.ID, err)
	}
	return stopped, nil
}
