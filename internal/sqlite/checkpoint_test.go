package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCheckpointsOffTheWriter: the writer never checkpoints in its commits
// (wal_autocheckpoint is 0), yet committed pages reach the main file soon
// after, without closing it: the checkpointer copies them.
func TestCheckpointsOffTheWriter(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	ctx := context.Background()
	var auto int
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto)
	}); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Errorf("writer's wal_autocheckpoint = %d, want 0", auto)
	}

	// The checkpointer may still be copying Open's migrations: start from
	// the file's size once it has settled.
	size := func() int64 {
		fi, err := os.Stat(db.Path())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	for prev := int64(-1); before != prev; before = size() {
		prev = before
		time.Sleep(300 * time.Millisecond)
	}
	mustWrite(t, db, `CREATE TABLE filler (v TEXT NOT NULL)`)
	mustWrite(t, db, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
		INSERT INTO filler SELECT '`+strings.Repeat("x", 1000)+`' FROM n`)
	deadline := time.Now().Add(10 * time.Second)
	for size() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("main file still %d bytes 10s after the commits: nothing checkpointed", before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
