package local

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/longrun/longrun/internal/sqlite"
)

func nop(context.Context, json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}

// A file whose history was written before 004_history_rowid keeps every
// event, in order, after the engine migrates it.
func TestHistoryRowidMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longrun.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	old := fstest.MapFS{}
	for _, name := range []string{"001_engine.sql", "002_retention.sql", "003_blobs.sql"} {
		body, err := fs.ReadFile(migrations, "migration/"+name)
		if err != nil {
			t.Fatal(err)
		}
		old[name] = &fstest.MapFile{Data: body}
	}
	if err := db.Migrate(ctx, migrationSet, old); err != nil {
		t.Fatal(err)
	}
	const arn = "arn:aws:states:us-east-1:000000000000:execution:longrun:old-1"
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		// Written out of order: the table's key, not the insert order, ordered them.
		for _, r := range []struct {
			first  int64
			events string
		}{
			{3, `[{"type":"TaskStateEntered","state":"Work","detail":{"input":{}}}]`},
			{1, `[{"type":"ExecutionStarted","detail":{"input":{}}},{"type":"PassStateEntered","state":"P"}]`},
		} {
			if _, err := tx.ExecContext(ctx, `INSERT INTO local_history (arn, first, ts, events) VALUES (?, ?, 1000, ?)`, arn, r.first, r.events); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e, err := New(ctx, testConfig(t, db, sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{}), map[string]Function{"notify": nop, "events": nop, "echo": nop}))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := db.SchemaVersion(ctx, migrationSet); err != nil || v < 4 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	h, err := e.History(ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ExecutionStarted", "PassStateEntered", "TaskStateEntered"}
	if len(h) != len(want) {
		t.Fatalf("%d events after the migration, want %d", len(h), len(want))
	}
	for i, ev := range h {
		if ev.Type != want[i] || ev.ID != []int64{1, 2, 3}[i] {
			t.Errorf("event %d: %d %s, want %d %s", i, ev.ID, ev.Type, i+1, want[i])
		}
	}
}

// A file whose chunks were written before 005_payload_chunks (in
// local_blobs, refs of hashes only) reads the same after the engine
// migrates it, and retention still deletes everything of the execution.
func TestPayloadChunksMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longrun.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	old := fstest.MapFS{}
	for _, name := range []string{"001_engine.sql", "002_retention.sql", "003_blobs.sql", "004_history_rowid.sql"} {
		body, err := fs.ReadFile(migrations, "migration/"+name)
		if err != nil {
			t.Fatal(err)
		}
		old[name] = &fstest.MapFile{Data: body}
	}
	if err := db.Migrate(ctx, migrationSet, old); err != nil {
		t.Fatal(err)
	}
	const arn = "arn:aws:states:us-east-1:000000000000:execution:longrun:old-2"
	input := `{"data":"` + bigText(8, 6000) + `"}`
	halves := []string{input[:3000], input[3000:]}
	ref := "@"
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		for _, h := range halves {
			sum := sha256.Sum256([]byte(h))
			ref += hex.EncodeToString(sum[:16])
			if _, err := tx.ExecContext(ctx, `INSERT INTO local_blobs (arn, hash, data) VALUES (?, ?, ?)`, arn, sum[:16], []byte(h)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO local_executions (arn, machine, name, status, input, output, start_ms, stop_ms)
			VALUES (?, 'longrun', 'old-2', 'SUCCEEDED', ?, '{}', 1000, 2000)`, arn, ref); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO local_history (arn, first, ts, events) VALUES (?, 1, 1000, ?)`,
			arn, `[{"type":"ExecutionStarted","pre":"{\"input\":","ref":"`+ref+`","suf":"}"}]`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e, err := New(ctx, testConfig(t, db, sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{}), map[string]Function{"notify": nop, "events": nop, "echo": nop}))
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Describe(ctx, arn)
	if err != nil || string(d.Input) != input {
		t.Fatalf("describe after the migration: %v, input %d bytes, want %d", err, len(d.Input), len(input))
	}
	h, err := e.History(ctx, arn)
	if err != nil || len(h) != 1 || string(h[0].Detail) != `{"input":`+input+`}` {
		t.Fatalf("history after the migration: %v, %d events", err, len(h))
	}
	if n, err := e.DeleteEnded(ctx, time.UnixMilli(3000), 10); err != nil || n != 1 {
		t.Fatalf("DeleteEnded = %d, %v", n, err)
	}
	for _, table := range []string{"payload_chunks", "payload_holders"} {
		var n int
		if err := db.Read(ctx, func(tx *sql.Tx) error { return tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n) }); err != nil || n != 0 {
			t.Errorf("%d rows left in %s (%v)", n, table, err)
		}
	}
}
