package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

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
