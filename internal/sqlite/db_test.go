package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/longrun/longrun/internal/sqlite"
)

func TestOpenConfiguresTheFile(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	ctx := context.Background()
	for _, c := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "1"}, // NORMAL
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
		{"query_only", "1"}, // Read runs on the reader pool
		{"page_size", "1024"},
	} {
		var got string
		if err := db.Read(ctx, func(tx *sql.Tx) error {
			return tx.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got)
		}); err != nil {
			t.Fatalf("PRAGMA %s: %v", c.pragma, err)
		}
		if got != c.want {
			t.Errorf("PRAGMA %s = %s, want %s", c.pragma, got, c.want)
		}
	}
	if v, err := db.SchemaVersion(ctx, sqlite.MigrationSet); err != nil || v < 1 {
		t.Errorf("SchemaVersion(%s) = %d, %v; want the embedded migrations applied", sqlite.MigrationSet, v, err)
	}
}

// A file made before the page size changed keeps its own: the page size of
// a database is fixed once it has content, and Open must neither fail on it
// nor rewrite it.
func TestOpenKeepsAnExistingPageSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"PRAGMA page_size = 4096", "PRAGMA journal_mode = WAL", "CREATE TABLE t (x)"} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var size int
	if err := db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size)
	}); err != nil {
		t.Fatal(err)
	}
	if size != 4096 {
		t.Errorf("page_size = %d after Open of an existing file, want its own 4096", size)
	}
}

func TestOpenRefusesNonFiles(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", ":memory:"} {
		if db, err := sqlite.Open(context.Background(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded; the writer and readers would see different databases", path)
		}
	}
}

func TestReadIsReadOnly(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	ctx := context.Background()
	err := db.Read(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, secrets) VALUES ('t', '[]')`)
		return err
	})
	if err == nil {
		t.Fatalf("Read let a transaction write")
	}
}

func TestWriteRollsBackOnError(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	ctx := context.Background()
	mustWrite(t, db, `CREATE TABLE counter (n INTEGER NOT NULL)`)
	mustWrite(t, db, `INSERT INTO counter VALUES (0)`)
	boom := errors.New("boom")
	err := db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE counter SET n = 99`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want the function's error", err)
	}
	if n := counter(t, db); n != 0 {
		t.Errorf("counter = %d after a failed Write, want 0", n)
	}
}

// TestWriteSerializes runs read-modify-write increments from many goroutines:
// with one IMMEDIATE writer none is lost and none fails with SQLITE_BUSY.
func TestWriteSerializes(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	ctx := context.Background()
	mustWrite(t, db, `CREATE TABLE counter (n INTEGER NOT NULL)`)
	mustWrite(t, db, `INSERT INTO counter VALUES (0)`)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			errs <- db.Write(ctx, func(tx *sql.Tx) error {
				var v int
				if err := tx.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&v); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `UPDATE counter SET n = ?`, v+1)
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if got := counter(t, db); got != n {
		t.Errorf("counter = %d, want %d", got, n)
	}
}

// busyLog records Write's retry warnings.
type busyLog struct {
	slog.Handler
	retried chan struct{}
	once    sync.Once
}

func (h *busyLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *busyLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "busy") {
		h.once.Do(func() { close(h.retried) })
	}
	return nil
}

// TestWriteRetriesWhenAnotherProcessHoldsTheLock opens the file twice, as two
// processes would: a Write that finds the lock taken retries and then succeeds.
func TestWriteRetriesWhenAnotherProcessHoldsTheLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	holder, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer holder.Close()
	log := &busyLog{retried: make(chan struct{})}
	other, err := sqlite.Open(ctx, path, sqlite.WithBusyTimeout(time.Millisecond), sqlite.WithLogger(slog.New(log)))
	if err != nil {
		t.Fatalf("Open(second): %v", err)
	}
	defer other.Close()
	mustWrite(t, holder, `CREATE TABLE counter (n INTEGER NOT NULL)`)
	mustWrite(t, holder, `INSERT INTO counter VALUES (0)`)

	locked, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- holder.Write(ctx, func(tx *sql.Tx) error {
			close(locked)
			<-release
			_, err := tx.ExecContext(ctx, `UPDATE counter SET n = n + 1`)
			return err
		})
	}()
	<-locked
	done := make(chan error, 1)
	go func() {
		done <- other.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE counter SET n = n + 10`)
			return err
		})
	}()
	select {
	case <-log.retried:
	case <-time.After(10 * time.Second):
		t.Fatalf("the second writer never met SQLITE_BUSY")
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatalf("holder Write: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("retried Write: %v", err)
	}
	if got := counter(t, holder); got != 11 {
		t.Errorf("counter = %d, want 11 (both writes)", got)
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	v1 := fstest.MapFS{
		"001_jobs.sql":  {Data: []byte(`CREATE TABLE local_jobs (id TEXT PRIMARY KEY);`)},
		"002_index.sql": {Data: []byte(`ALTER TABLE local_jobs ADD COLUMN state TEXT; CREATE INDEX local_jobs_state ON local_jobs (state);`)},
		"README.md":     {Data: []byte(`not a migration`)},
	}
	v2 := fstest.MapFS{
		"001_jobs.sql":  v1["001_jobs.sql"],
		"002_index.sql": v1["002_index.sql"],
		"003_more.sql":  {Data: []byte(`CREATE TABLE local_timers (id TEXT PRIMARY KEY);`)},
	}
	broken := fstest.MapFS{
		"001_jobs.sql":  v1["001_jobs.sql"],
		"002_index.sql": v1["002_index.sql"],
		"003_more.sql":  {Data: []byte(`CREATE TABLE half (id TEXT); THIS IS NOT SQL;`)},
	}
	dup := fstest.MapFS{
		"001_a.sql": {Data: []byte(`SELECT 1;`)},
		"1_b.sql":   {Data: []byte(`SELECT 1;`)},
	}
	ctx := context.Background()

	for _, c := range []struct {
		name    string
		steps   []fstest.MapFS
		wantErr string // of the last step
		want    int    // version after the steps
		tables  []string
		absent  []string
	}{
		{name: "applies in order", steps: []fstest.MapFS{v1}, want: 2, tables: []string{"local_jobs"}},
		{name: "is idempotent", steps: []fstest.MapFS{v1, v1}, want: 2, tables: []string{"local_jobs"}},
		{name: "applies only what is new", steps: []fstest.MapFS{v1, v2}, want: 3, tables: []string{"local_jobs", "local_timers"}},
		{name: "a failed migration leaves the previous version", steps: []fstest.MapFS{v1, broken}, wantErr: "003_more.sql", want: 2, absent: []string{"half"}},
		{name: "refuses a file newer than the binary", steps: []fstest.MapFS{v2, v1}, wantErr: "newer than this binary", want: 3},
		{name: "refuses two files of one version", steps: []fstest.MapFS{dup}, wantErr: "share version 1", want: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db, _ := setup(t)
			var err error
			for _, step := range c.steps {
				err = db.Migrate(ctx, "local", step)
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("Migrate: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("Migrate = %v, want an error naming %q", err, c.wantErr)
			}
			if v, err := db.SchemaVersion(ctx, "local"); err != nil || v != c.want {
				t.Errorf("SchemaVersion(local) = %d, %v; want %d", v, err, c.want)
			}
			for _, name := range c.tables {
				if !hasTable(t, db, name) {
					t.Errorf("table %s missing", name)
				}
			}
			for _, name := range c.absent {
				if hasTable(t, db, name) {
					t.Errorf("table %s exists; the failed migration was not rolled back", name)
				}
			}
			// The adapters' own set is untouched by another set.
			if v, err := db.SchemaVersion(ctx, sqlite.MigrationSet); err != nil || v < 1 {
				t.Errorf("SchemaVersion(%s) = %d, %v", sqlite.MigrationSet, v, err)
			}
		})
	}
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "longrun.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	q := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	if err := q.Send(ctx, "survives"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	msgs, err := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{}).Receive(ctx, 1, 0, time.Minute)
	if err != nil || len(msgs) != 1 || msgs[0].Body != "survives" {
		t.Fatalf("Receive after reopen = %+v, %v; want the message sent before", msgs, err)
	}
}

func mustWrite(t *testing.T, db *sqlite.DB, stmt string) {
	t.Helper()
	ctx := context.Background()
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, stmt)
		return err
	}); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func counter(t *testing.T, db *sqlite.DB) int {
	t.Helper()
	ctx := context.Background()
	var n int
	if err := db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n)
	}); err != nil {
		t.Fatalf("read counter: %v", err)
	}
	return n
}

func hasTable(t *testing.T, db *sqlite.DB, name string) bool {
	t.Helper()
	ctx := context.Background()
	var n int
	if err := db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n)
	}); err != nil {
		t.Fatalf("look up table %s: %v", name, err)
	}
	return n == 1
}
