package local

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DeleteEnded deletes up to limit executions (of any machine) that ended
// before before, oldest first, with their history: the retention sweep of
// `longrun dev --retention`, as Step Functions keeps an ended execution 90
// days. The payload chunks of each (blob.go) go with it, unless its record
// or a task message still holds them. Running executions
// are never touched. It returns how many it deleted.
func (e *Engine) DeleteEnded(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int64
	err := e.db.Write(ctx, func(tx *sql.Tx) error {
		// The batch's arns go into a temporary table once, so the history
		// and the executions are deleted by the same list.
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS expired (arn TEXT PRIMARY KEY)`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM temp.expired`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO temp.expired (arn)
			SELECT arn FROM local_executions WHERE stop_ms IS NOT NULL AND stop_ms < ? ORDER BY stop_ms LIMIT ?`,
			before.UnixMilli(), limit); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM local_history WHERE arn IN (SELECT arn FROM temp.expired)`); err != nil {
			return err
		}
		// The engine's hold on their payload chunks goes; the chunks go
		// with it unless a record or a message still holds them.
		if _, err := tx.ExecContext(ctx, `DELETE FROM payload_holders WHERE holder = ? AND owner IN (SELECT arn FROM temp.expired)`, engineHolder); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM payload_chunks WHERE owner IN (SELECT arn FROM temp.expired)
			AND NOT EXISTS (SELECT 1 FROM payload_holders h WHERE h.owner = payload_chunks.owner)`); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM local_executions WHERE arn IN (SELECT arn FROM temp.expired)`)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete executions ended before %s: %w", before.Format(time.RFC3339), err)
	}
	return int(n), nil
}
