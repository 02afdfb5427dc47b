package sqlite_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

// The page profile names the table whose pages the writes dirtied: rows of
// 10 KiB each fill pages of their table, counted in WAL frames and once per
// checkpoint.
func TestPageProfileNamesTables(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	ctx := context.Background()
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE big (v TEXT) STRICT`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.ProfilePages()
	for range 20 {
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO big (v) VALUES (?)`, strings.Repeat("x", 10<<10))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	p := db.PageProfile()
	if len(p.Tables) == 0 || p.Tables[0].Name != "big" {
		t.Fatalf("tables %+v, want big first", p.Tables)
	}
	if big := p.Tables[0]; big.WALFrames < 20*2 || big.Checkpointed < 20*2 || big.Checkpointed > big.WALFrames {
		t.Errorf("big: %d WAL frames, %d checkpointed pages; want at least 2 pages per 10 KiB row, each checkpointed once at most per frame", big.WALFrames, big.Checkpointed)
	}
}
