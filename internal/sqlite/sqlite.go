// Package sqlite owns longrun's single-file storage for one machine: the
// ExecutionStore, TenantStore and Queue adapters on SQLite (pure Go, through
// modernc.org/sqlite), and the DB they share, which the local engine
// (internal/local) uses for its own tables too.
//
// # One file, one writer
//
// Open puts the file in WAL mode with synchronous=NORMAL (a commit survives a
// process crash; only an OS crash or power loss may lose the last commits),
// foreign keys on and a busy timeout. It keeps three connection pools:
//
//   - a writer: one connection whose transactions begin IMMEDIATE, so every
//     write in the process queues for it rather than racing for the lock and
//     failing with SQLITE_BUSY halfway through a transaction; callers that
//     queue together commit together (group.go);
//   - readers: several query-only connections. In WAL mode they read a
//     consistent snapshot and never wait for the writer;
//   - a checkpointer: one connection that copies the WAL into the file, so
//     the writer's commits never wait for a checkpoint (checkpoint.go).
//
// The adapters' statements are prepared once per connection (prepared).
//
// Write and Read are the only ways in; both are exported so other packages
// can put their own tables in the same file and share the writer:
//
//	err := db.Migrate(ctx, "local", localMigrations) // fs.FS of 001_x.sql, 002_y.sql, …
//	err = db.Write(ctx, func(tx *sql.Tx) error { … })
//	err = db.Read(ctx, func(tx *sql.Tx) error { … })
//
// Write commits the functions of callers that queue for the writer together,
// each in a savepoint of one transaction (see group.go), and retries a
// function alone when its group cannot commit or SQLite still answers
// SQLITE_BUSY after the busy timeout (another process holds the file). So
// the function must do nothing but database work: it may run more than
// once, and must leave the transaction to Write (no Commit, no Rollback). It
// must not call
// Write itself: the one writer connection is already its own, so the inner
// call would wait forever (a Read inside is fine but sees the snapshot before
// the write). Queue.SendTx enqueues inside such a transaction, so a state
// change and the message it causes commit together.
//
// # Migrations
//
// Each migration set has a name and an fs.FS whose top-level files are named
// NNN_description.sql. Migrate applies, in order, those not yet recorded in
// the schema_version table, each in its own write transaction together with
// its record, and refuses to run against a file migrated by a newer binary.
// The adapters' own set is named "longrun" and is applied by Open.
//
// # Time
//
// DB.Clock is the clock every adapter reads ("now" for visibility timeouts and
// sent times) and what long polling waits on. It defaults to real time;
// tests replace it with a fake clock they move by hand. Set it right after
// Open, before the DB is used. Times are stored as Unix
// milliseconds, the precision the DynamoDB adapter keeps too.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/payload"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migration/*.sql
var migrations embed.FS

// MigrationSet is the name under which the adapters' own schema is recorded
// in schema_version.
const MigrationSet = "longrun"

// DB is one SQLite file shared by the adapters and the local engine.
type DB struct {
	// Clock is the time of every record and timeout, and what long polls
	// wait on. Default longrun.SystemClock.
	Clock longrun.Clock

	path   string
	writer *sql.DB
	reader *sql.DB
	w, r   prepared // the adapters' statements on writer and reader
	log    *slog.Logger

	writes *writeQueue              // callers waiting for the writer (see group.go)
	fault  func() error             // WithWriteFault
	ckpt   *checkpointer            // moves the WAL into the file, off the writer (see checkpoint.go)
	prof   atomic.Pointer[profiler] // ProfileWrites (see profile.go)

	mu        sync.Mutex
	signals   map[string]chan struct{} // per queue: closed on every change that may make a message visible
	committed map[*sql.Tx][]func()     // run once the transaction commits (see onCommit)
}

type config struct {
	busyTimeout time.Duration
	readers     int
	logger      *slog.Logger
	walLimit    int64
	writeFault  func() error
}

// Option changes how Open opens the file.
type Option func(*config)

// WithBusyTimeout sets how long a connection waits for a lock held by
// another process before SQLite answers SQLITE_BUSY. Default 5 s.
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// WithReaders sets the size of the reader pool. Default max(4, GOMAXPROCS).
func WithReaders(n int) Option { return func(c *config) { c.readers = n } }

// WithLogger sets the logger for retries and other notable events. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithWALLimit sets the WAL size past which the checkpointer truncates the
// WAL (see checkpoint.go). Default 32 MiB.
func WithWALLimit(bytes int64) Option { return func(c *config) { c.walLimit = bytes } }

// WithWriteFault makes every commit ask fault first and fail with its
// error, if any, as a commit on a full disk fails with SQLITE_FULL: tests
// of a full disk and of recovery from one, where no small filesystem can be
// mounted.
func WithWriteFault(fault func() error) Option { return func(c *config) { c.writeFault = fault } }

// Open opens (creating if needed) the SQLite file at path and applies the
// adapters' migrations. path must be a file: ":memory:" would give the writer
// and the readers different databases.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	cfg := config{busyTimeout: 5 * time.Second, readers: max(4, runtime.GOMAXPROCS(0)), walLimit: defaultWALLimit}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("open sqlite: path %q is not a file", path)
	}

	const (
		forWriter = iota
		forReaders
		forCheckpoints
	)
	pragmas := func(role int) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout("+strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10)+")")
		q.Add("_pragma", "foreign_keys(1)")
		// NORMAL on every connection: it is also what makes a checkpoint
		// sync the WAL and the file.
		q.Add("_pragma", "synchronous(NORMAL)")
		switch role {
		case forReaders:
			q.Add("_pragma", "query_only(1)")
		case forWriter:
			q.Add("_pragma", "journal_mode(WAL)")
			// The checkpointer does it, off the writer's commits (see checkpoint.go).
			q.Add("_pragma", "wal_autocheckpoint(0)")
			q.Add("_pragma", "journal_size_limit("+strconv.Itoa(journalSizeLimit)+")")
			q.Set("_txlock", "immediate")
		}
		return path + "?" + q.Encode()
	}

	if err := create(ctx, path); err != nil {
		return nil, err
	}
	writer, err := sql.Open("sqlite", pragmas(forWriter))
	if err != nil {
		return nil, fmt.Errorf("open sqlite writer %s: %w", path, err)
	}
	// One writer connection rather than a pool of IMMEDIATE writers: measured
	// with 8 goroutines creating executions on this 2-core machine, a pool of
	// 4 gained at most 20% throughput (≈2,000–2,400/s against ≈1,920/s) but its
	// slowest write took 0.7–1.7 s, SQLite's busy handler sleeping between
	// lock attempts, against 40–66 ms here, where writers queue in order.
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	// The writer connects first, so the file is in WAL mode before any reader opens it.
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite writer %s: %w", path, err)
	}

	reader, err := sql.Open("sqlite", pragmas(forReaders))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite readers %s: %w", path, err)
	}
	reader.SetMaxOpenConns(cfg.readers)
	reader.SetMaxIdleConns(cfg.readers)

	checkpoints, err := sql.Open("sqlite", pragmas(forCheckpoints))
	if err != nil {
		reader.Close()
		writer.Close()
		return nil, fmt.Errorf("open sqlite checkpointer %s: %w", path, err)
	}
	checkpoints.SetMaxOpenConns(1)
	checkpoints.SetMaxIdleConns(1)

	db := &DB{
		Clock:     longrun.SystemClock{},
		path:      path,
		writer:    writer,
		reader:    reader,
		log:       cfg.logger,
		writes:    newWriteQueue(),
		fault:     cfg.writeFault,
		ckpt:      newCheckpointer(checkpoints, writer, path, cfg.busyTimeout, cfg.logger, cfg.walLimit),
		signals:   map[string]chan struct{}{},
		committed: map[*sql.Tx][]func(){},
	}
	// Opening a file that is already set up writes nothing, so it works on a
	// full disk (longrun dev must restart there) or a read-only copy.
	var setUp int
	if err := reader.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'`).Scan(&setUp); err != nil {
		db.Close()
		return nil, fmt.Errorf("read schema of %s: %w", path, err)
	}
	if setUp == 0 {
		if err := db.createSchemaVersion(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("create schema_version in %s: %w", path, err)
		}
	}
	own, err := fs.Sub(migrations, "migration")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded migrations: %w", err)
	}
	if err := db.Migrate(ctx, MigrationSet, own); err != nil {
		db.Close()
		return nil, err
	}
	if db.w, err = prepare(ctx, writer, writeQueries); err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare statements on %s: %w", path, err)
	}
	if db.r, err = prepare(ctx, reader, readQueries); err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare statements on %s: %w", path, err)
	}
	db.ckpt.start()
	return db, nil
}

func (db *DB) createSchemaVersion(ctx context.Context) error {
	return db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			name       TEXT    NOT NULL,
			version    INTEGER NOT NULL,
			applied_at INTEGER NOT NULL,
			PRIMARY KEY (name, version)
		) STRICT`)
		return err
	})
}

// faultErr is the error of an injected write fault (WithWriteFault).
func (db *DB) faultErr() error {
	if db.fault == nil {
		return nil
	}
	if err := db.fault(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// prepared holds the adapters' hot statements, each prepared once on a
// pool. The driver parses the SQL of every unprepared statement again,
// which took ~20% of the CPU of the end-to-end benchmark (devapp). A
// statement is prepared on one connection up front and, by database/sql,
// once more on any other connection of the pool that runs it; a
// transaction takes it with Tx.StmtContext. They are prepared at Open
// because a pool cannot prepare while a transaction holds the writer, its
// only connection.
type prepared map[string]*sql.Stmt

// writeQueries and readQueries are what the writer and the readers prepare.
var (
	writeQueries = []string{
		getExecutionSQL, idempotencyKeySQL, insertExecutionSQL, insertIdempotencySQL, deleteExecutionSQL,
		finishExecutionSQL, arnOfSQL, setProgressSQL, saveDeliverySQL, payload.InsertChunkSQL, payload.HoldSQL, payload.ReadChunkSQL, payload.UnholdSQL, payload.DropChunksSQL,
		sendSQL, nextVisibleSQL, visibleSQL, deadLetterSQL, takeSQL, deleteMessageSQL, changeVisibilitySQL,
		putTenantSQL, putAPIKeySQL, deleteAPIKeySQL,
		savepointSQL, releaseSQL, rollbackToSQL,
		deleteByIDSQL,
	}
	readQueries = append([]string{getExecutionSQL, arnOfSQL, tenantOfSQL, getTenantSQL, tenantForKeySQL, heldSQL, payload.ReadChunkSQL}, listQueries()...)
)

// listQueries is every form of listExecutionsSQL: with or without each filter.
func listQueries() []string {
	var qs []string
	for _, status := range []bool{false, true} {
		for _, job := range []bool{false, true} {
			for _, after := range []bool{false, true} {
				qs = append(qs, listExecutionsSQL(status, job, after))
			}
		}
	}
	return qs
}

func prepare(ctx context.Context, pool *sql.DB, queries []string) (prepared, error) {
	p := make(prepared, len(queries))
	for _, q := range queries {
		st, err := pool.PrepareContext(ctx, q)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		p[q] = st
	}
	return p, nil
}

func (p prepared) close() error {
	var errs []error
	for _, st := range p {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// exec runs query in tx, prepared if it is one of p's.
func (p prepared) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st, ok := p[query]; ok {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// queryRow runs query in tx, prepared if it is one of p's.
func (p prepared) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st, ok := p[query]; ok {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// in is p in tx, as internal/payload takes statements: prepared if the
// query is one of p's.
func (p prepared) in(tx *sql.Tx) txStmts { return txStmts{p, tx} }

type txStmts struct {
	p  prepared
	tx *sql.Tx
}

func (t txStmts) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := t.p[query]; ok {
		return t.tx.StmtContext(ctx, st), nil
	}
	return t.tx.PrepareContext(ctx, query)
}

// row runs query, a single SELECT, on a connection of p's pool outside any
// transaction: one statement reads one consistent snapshot by itself, so
// the BEGIN and ROLLBACK around it that Read adds would be wasted (the
// lookups of every API request and describe go this way).
func (p prepared) row(ctx context.Context, pool *sql.DB, query string, args ...any) *sql.Row {
	if st, ok := p[query]; ok {
		return st.QueryRowContext(ctx, args...)
	}
	return pool.QueryRowContext(ctx, query, args...)
}

// query runs query in tx, prepared if it is one of p's.
func (p prepared) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if st, ok := p[query]; ok {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}

// PrepareWrite prepares query on the writer connection, for use in Write's
// transactions through tx.StmtContext, which then reuses it rather than
// parsing the SQL again in every transaction. Not from inside a Write: the
// writer is busy there.
func (db *DB) PrepareWrite(ctx context.Context, query string) (*sql.Stmt, error) {
	st, err := db.writer.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	return st, nil
}

// pageSize is the page size of a file Open creates. A commit writes every
// page it changed, whole, to the WAL (and the checkpoint writes it again
// into the file); most of longrun's commits change a few short rows in a
// handful of tables and indexes, so a smaller page means fewer bytes per
// commit. Measured (docs/benchmarks.md): 1,024 against SQLite's default
// 4,096 halves the bytes written per no-op execution (76-82 KB -> 37-39 KB
// in BenchmarkEndToEnd; 130 -> 51 KB of WAL per execution at 500 starts/s)
// at the same executions/s; large payloads, written as overflow pages, cost
// the same either way. A file created before keeps its page size.
const pageSize = 1024

// create makes a new file with pageSize, in WAL mode. The page size must be
// set before anything is written, and the driver runs the connection
// pragmas in lexical order (journal_mode, which writes the header, before
// page_size), so it takes a connection of its own. Nothing happens to a file
// that exists.
func create(ctx context.Context, path string) error {
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return fmt.Errorf("create sqlite file %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // page_size is per connection until the header is written: both on one
	for _, pragma := range []string{"PRAGMA busy_timeout = 5000", "PRAGMA page_size = " + strconv.Itoa(pageSize), "PRAGMA journal_mode = WAL"} {
		if _, err := db.ExecContext(ctx, pragma); err != nil {
			return fmt.Errorf("create sqlite file %s: %s: %w", path, pragma, err)
		}
	}
	return nil
}

// PrepareRead prepares query on the readers' pool, to run on its own rather
// than in Read's transaction: a single SELECT reads one consistent snapshot
// by itself, so the BEGIN and ROLLBACK around it would be wasted (the local
// engine's lookups before a batch go this way).
func (db *DB) PrepareRead(ctx context.Context, query string) (*sql.Stmt, error) {
	st, err := db.reader.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	return st, nil
}

// Path returns the file the DB was opened on.
func (db *DB) Path() string { return db.path }

// Close closes the pools. Closing checkpoints the WAL into the main file.
func (db *DB) Close() error {
	return errors.Join(db.ckpt.close(), db.r.close(), db.w.close(), db.reader.Close(), db.writer.Close())
}

// maxBusyRetries bounds Write's retries after SQLITE_BUSY; each attempt has
// already waited the busy timeout inside SQLite.
const maxBusyRetries = 3

// writeAlone runs fn in a transaction of its own, as Write did before it
// grouped writes: retried after SQLITE_BUSY, fn may run more than once.
func (db *DB) writeAlone(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := db.writeOnce(ctx, fn)
		if err == nil || !isBusy(err) || attempt == maxBusyRetries {
			return err
		}
		backoff := time.Duration(attempt+1) * 50 * time.Millisecond
		db.log.WarnContext(ctx, "sqlite busy, retrying write", "path", db.path, "attempt", attempt+1, "backoff", backoff)
		// The lock is held by another process, so this waits in real time, not on db.Clock.
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("write after SQLITE_BUSY: %w", ctx.Err())
		}
	}
}

func (db *DB) writeOnce(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	prof := db.startTx()
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	committed := false
	defer func() {
		hooks := db.takeHooks(tx)
		if !committed {
			_ = tx.Rollback() // the error (or panic) that made us roll back is the one to report
			return
		}
		for _, h := range hooks {
			h()
		}
	}()
	if err := db.call(fn, tx); err != nil {
		return err
	}
	if err := db.faultErr(); err != nil {
		return err
	}
	prof.committing()
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	prof.committed()
	committed = true
	db.ckpt.committed()
	return nil
}

// onCommit runs fn after tx, a transaction of Write, commits; never if it
// rolls back. It is how a send inside someone else's transaction wakes
// receivers only once the message can be seen.
func (db *DB) onCommit(tx *sql.Tx, fn func()) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.committed[tx] = append(db.committed[tx], fn)
}

// hookMark and dropHooks forget the hooks a grouped function added before
// its savepoint was rolled back.
func (db *DB) hookMark(tx *sql.Tx) int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return len(db.committed[tx])
}

func (db *DB) dropHooks(tx *sql.Tx, mark int) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if hooks, ok := db.committed[tx]; ok {
		db.committed[tx] = hooks[:mark]
	}
}

func (db *DB) takeHooks(tx *sql.Tx) []func() {
	db.mu.Lock()
	defer db.mu.Unlock()
	hooks := db.committed[tx]
	delete(db.committed, tx)
	return hooks
}

// Read runs fn in a read-only transaction on a reader connection: a
// consistent snapshot that never waits for the writer.
func (db *DB) Read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to keep
	return fn(tx)
}

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code() & 0xff // the primary code; extended codes keep it in the low byte
	}
	return 0
}

func isBusy(err error) bool { return sqliteCode(err) == sqlite3.SQLITE_BUSY }

func isConstraint(err error) bool { return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT }

// signal returns the channel that is closed the next time queue changes.
// Take it before looking at the queue, so a change in between is not missed.
func (db *DB) signal(queue string) <-chan struct{} {
	db.mu.Lock()
	defer db.mu.Unlock()
	ch, ok := db.signals[queue]
	if !ok {
		ch = make(chan struct{})
		db.signals[queue] = ch
	}
	return ch
}

// notify wakes every Receive waiting on queue.
func (db *DB) notify(queue string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if ch, ok := db.signals[queue]; ok {
		close(ch)
		delete(db.signals, queue)
	}
}

// Now is db.Clock's time: "now" for every record and timeout.
func (db *DB) Now() time.Time { return db.Clock.Now() }

func toMillis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// nullMillis stores the zero time as NULL.
func nullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromNullMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMillis(n.Int64)
}
