package devapp

import (
	"context"
	"fmt"
	"time"

	"github.com/longrun/longrun/internal/delivery"
)

// DefaultRetention is how long an ended execution, its history and its
// webhook deliveries are kept: Step Functions keeps an ended execution 90
// days.
const DefaultRetention = 90 * 24 * time.Hour

// sweepBatch bounds the executions one sweep transaction deletes, so the
// sweep never holds the writer for long: other writes queue between
// batches.
const sweepBatch = 256

// sweepInterval is how often the sweeper runs: a hundredth of the
// retention, so the file stops growing soon after the retention is reached,
// between every 10 s (a sweep with nothing to delete is one index lookup)
// and every hour (90 days: hourly).
func sweepInterval(retention time.Duration) time.Duration {
	return max(10*time.Second, min(retention/100, time.Hour))
}

// Expire deletes, in small batches, everything that ended longer than the
// retention ago: execution records (with their idempotency keys and
// webhook deliveries) and the engine's executions with their history. It
// returns how many records and engine executions it deleted.
func (a *App) Expire(ctx context.Context) (records, executions int, err error) {
	before := a.DB.Clock.Now().Add(-a.retention)
	for {
		n, err := a.Executions.DeleteEnded(ctx, before, sweepBatch)
		records += n
		if err != nil {
			return records, executions, fmt.Errorf("retention: %w", err)
		}
		m, err := a.Engine.DeleteEnded(ctx, before, sweepBatch)
		executions += m
		if err != nil {
			return records, executions, fmt.Errorf("retention: %w", err)
		}
		if n < sweepBatch && m < sweepBatch {
			return records, executions, nil
		}
	}
}

// sweep runs Expire at once and then every sweepInterval on the DB's
// clock, until ctx ends.
func (a *App) sweep(ctx context.Context) {
	interval := sweepInterval(a.retention)
	for {
		records, executions, err := a.Expire(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.WarnContext(ctx, "retention sweep failed; the next one tries again", "error", err)
		case records+executions > 0:
			a.log.InfoContext(ctx, "retention sweep", "records", records, "engine_executions", executions, "retention", a.retention)
		}
		due, stop := a.DB.Clock.Until(a.DB.Clock.Now().Add(interval))
		if a.onSweep != nil {
			a.onSweep()
		}
		select {
		case <-ctx.Done():
			stop()
			return
		case <-due:
		}
	}
}

// resumeInterval is how often longrun dev looks for webhook deliveries whose
// loop ended without delivering (see notify.Notifier.ResumeDelivery).
const resumeInterval = time.Minute

// resumeDeliveries restarts, every resumeInterval on the DB's clock until ctx
// ends, the deliveries that stalled: a deliver loop whose notify calls all
// failed (a full disk) ends, and this brings it back once they can succeed,
// without a restart of longrun dev.
func (a *App) resumeDeliveries(ctx context.Context) {
	for {
		due, stop := a.DB.Clock.Until(a.DB.Clock.Now().Add(resumeInterval))
		select {
		case <-ctx.Done():
			stop()
			return
		case <-due:
		}
		ids, err := a.Executions.StalledDeliveries(ctx, a.DB.Clock.Now().Add(-delivery.StallAfter), sweepBatch)
		if err != nil {
			a.log.WarnContext(ctx, "look for stalled webhook deliveries", "error", err)
			continue
		}
		for _, id := range ids {
			if err := a.notifier.ResumeDelivery(ctx, id); err != nil && ctx.Err() == nil {
				a.log.WarnContext(ctx, "resume a stalled webhook delivery; the next look tries again", "execution_id", id, "error", err)
			}
		}
	}
}
