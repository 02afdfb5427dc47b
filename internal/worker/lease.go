package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	longrun "github.com/longrun/longrun"
)

// Leaser is the part of a queue a worker holds its messages with: while a
// job runs, its message stays invisible (leased) and the lease is renewed;
// when the worker dies, renewals stop and the message comes back to the
// queue within one lease, for another worker, with the same task token.
// This, not Step Functions' HeartbeatSeconds (whose clock starts when the
// message is sent, so it would count the time the message waited in the
// queue), is how a dead worker is noticed: docs/state-machine.md, "Liveness".
type Leaser interface {
	ChangeVisibility(ctx context.Context, receipt string, visibility time.Duration) error
}

// holdLease keeps the message of receipt invisible for lease from now,
// renewed every lease/3, until ctx ends. With atOnce the first renewal is
// made right away: the Lambda event source mapping receives with the queue's
// visibility timeout (at least the function's 15 minutes), and the worker
// shortens it to the lease so a dead invocation is noticed in one lease.
func holdLease(ctx context.Context, q Leaser, clock longrun.Clock, receipt string, lease time.Duration, atOnce bool, log *slog.Logger) {
	t := newTicker(clock, lease/3)
	defer t.Stop()
	for first := atOnce; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.Due():
				t.Next()
			}
		}
		err := q.ChangeVisibility(ctx, receipt, lease)
		switch {
		case longrun.IsCode(err, longrun.ENOTFOUND):
			// The message is gone from under this receipt: deleted with the
			// task's answer (longrun dev's engine deletes it in the answer's
			// transaction, a moment before the worker stops renewing), or
			// received again elsewhere after this worker stalled past its
			// lease. Either way the job goes on, and its task token decides
			// which run's completion counts.
			log.InfoContext(ctx, "renew lease: the message is no longer held under this receipt (answered, or received again)", "err", err)
			return
		case err != nil && !errors.Is(err, context.Canceled):
			log.WarnContext(ctx, "renew lease", "err", fmt.Errorf("change visibility: %w", err))
		}
	}
}
