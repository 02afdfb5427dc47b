package sqlite

// CheckpointCounts reports the checkpointer's TRUNCATE checkpoints and its
// catch-ups on the writer so far.
func (db *DB) CheckpointCounts() (truncates, catchUps int64) {
	return db.ckpt.truncates.Load(), db.ckpt.catchUps.Load()
}
