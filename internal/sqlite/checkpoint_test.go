package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun/internal/sqlite"
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

// TestWALStaysBounded: with readers always inside a read transaction and
// writers committing all the time — the load under which PASSIVE
// checkpoints never let the WAL start over — the WAL stays near its limit
// while many times that is written.
func TestWALStaysBounded(t *testing.T) {
	t.Parallel()
	const limit = 512 << 10
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "longrun.db"), sqlite.WithWALLimit(limit))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mustWrite(t, db, `CREATE TABLE filler (v TEXT NOT NULL)`)
	var wg sync.WaitGroup
	for range 4 { // readers overlapping one another: one is always reading
		wg.Go(func() {
			for ctx.Err() == nil {
				_ = db.Read(ctx, func(tx *sql.Tx) error {
					var n int
					err := tx.QueryRowContext(ctx, `SELECT max(rowid) FROM filler`).Scan(&n)
					time.Sleep(time.Millisecond)
					return err
				})
			}
		})
	}
	row := strings.Repeat("x", 4000)
	var written int64
	var maxWAL int64
	for written < 96*limit {
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			for range 10 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO filler (v) VALUES (?)`, row); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM filler WHERE rowid < (SELECT max(rowid) FROM filler) - 100`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		written += 10 * int64(len(row))
		if fi, err := os.Stat(db.Path() + "-wal"); err == nil {
			maxWAL = max(maxWAL, fi.Size())
		}
	}
	cancel()
	wg.Wait()
	t.Logf("wrote %d MiB; largest WAL %.1f MiB (limit %d KiB)", written>>20, float64(maxWAL)/(1<<20), limit>>10)
	if maxWAL > 32*limit { // this load writes ~40 MiB/s; unbounded, the WAL grows to nearly all of it
		t.Errorf("the WAL reached %d bytes with a limit of %d", maxWAL, limit)
	}
}

// TestWALRewindsUnderSteadyWrites: with commits arriving all the time and
// short readers, as under a steady start rate, the WAL starts over after the
// checkpointer's catch-ups on the writer and stays far below its limit: the
// TRUNCATE checkpoint, which holds the writer for tens of milliseconds, is
// not needed at all.
func TestWALRewindsUnderSteadyWrites(t *testing.T) {
	t.Parallel()
	const limit = 3 << 20
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "longrun.db"), sqlite.WithWALLimit(limit))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	mustWrite(t, db, `CREATE TABLE filler (v TEXT NOT NULL)`)
	row := strings.Repeat("x", 500)
	var maxWAL int64
	// ~8 MiB of rows (more in pages) in small commits over a few seconds:
	// several times the limit, and many checkpoint rounds (100 ms apart).
	for i := range 2000 {
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			for range 8 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO filler (v) VALUES (?)`, row); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM filler WHERE rowid < (SELECT max(rowid) FROM filler) - 200`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			_ = db.Read(ctx, func(tx *sql.Tx) error {
				var n int
				return tx.QueryRowContext(ctx, `SELECT count(*) FROM filler`).Scan(&n)
			})
		}
		if fi, err := os.Stat(db.Path() + "-wal"); err == nil {
			maxWAL = max(maxWAL, fi.Size())
		}
		time.Sleep(500 * time.Microsecond) // a steady rate, not a burst: the writer has gaps, as it does below saturation
	}
	truncates, catchUps := db.CheckpointCounts()
	t.Logf("largest WAL %.1f MiB (limit %d MiB), %d catch-ups, %d truncates", float64(maxWAL)/(1<<20), limit>>20, catchUps, truncates)
	if catchUps == 0 {
		t.Error("no catch-up checkpoint ran on the writer")
	}
	if truncates != 0 || maxWAL >= limit {
		t.Errorf("the WAL reached %d bytes and took %d TRUNCATE checkpoints; want it rewound by the catch-ups, below the %d limit", maxWAL, truncates, limit)
	}
}
