package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// member is one caller of a grouped write: it inserts its name, adds an
// onCommit hook, then does what its kind says.
type member struct {
	name string
	kind string // "ok", "fail", "panic", "end" (ends the SQLite transaction behind Write's back), "cancel" (its context ends while queued)
}

var errMember = errors.New("member failed")

// TestGroupCommit queues callers behind a write that holds the writer, so
// they run as one group, and checks that each gets what a transaction of its
// own would give.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		members []member
		grouped bool // the successful members committed in one transaction
	}{
		{
			name:    "all succeed",
			members: []member{{"a", "ok"}, {"b", "ok"}, {"c", "ok"}},
			grouped: true,
		},
		{
			name:    "a failure or a panic rolls back only its own changes",
			members: []member{{"a", "ok"}, {"b", "fail"}, {"c", "ok"}, {"d", "panic"}, {"e", "ok"}},
			grouped: true,
		},
		{
			name:    "a cancelled caller never runs",
			members: []member{{"a", "ok"}, {"b", "cancel"}, {"c", "ok"}},
			grouped: true,
		},
		{
			name:    "a function that ends the transaction makes every other run alone, once",
			members: []member{{"a", "ok"}, {"b", "end"}, {"c", "ok"}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := setupGroup(t)
			got := runGroupOf(t, db, c.members)

			var want []string
			for _, m := range c.members {
				o := got[m.name]
				switch m.kind {
				case "ok":
					want = append(want, m.name)
					if o.err != nil || o.panicked {
						t.Errorf("%s: Write = %v, %v; want success", m.name, o.err, o.panicVal)
					}
				case "fail", "end":
					if !errors.Is(o.err, errMember) {
						t.Errorf("%s: Write = %v; want its function's error", m.name, o.err)
					}
				case "panic":
					if !o.panicked || o.panicVal != "boom "+m.name {
						t.Errorf("%s: panicked = %v with %v; want its panic raised in its goroutine", m.name, o.panicked, o.panicVal)
					}
				case "cancel":
					if !errors.Is(o.err, context.Canceled) || o.ran {
						t.Errorf("%s: Write = %v, ran = %v; want context.Canceled without running", m.name, o.err, o.ran)
					}
				}
			}
			if rows := names(t, db); !slices.Equal(rows, want) {
				t.Errorf("committed rows = %v, want %v", rows, want)
			}
			var hooked []string
			for _, m := range c.members {
				if got[m.name].hooked {
					hooked = append(hooked, m.name)
				}
			}
			if !slices.Equal(hooked, want) {
				t.Errorf("onCommit hooks ran for %v, want %v (the committed ones)", hooked, want)
			}
			txs := map[*sql.Tx]bool{}
			for _, m := range want {
				txs[got[m].tx] = true
			}
			if grouped := len(txs) == 1; grouped != c.grouped {
				t.Errorf("successful members committed in %d transactions; want grouped = %v", len(txs), c.grouped)
			}
		})
	}
}

type memberOutcome struct {
	err      error
	panicked bool
	panicVal any
	ran      bool
	hooked   bool
	tx       *sql.Tx // the transaction of its last run
}

// runGroupOf holds the writer, queues every member, then lets them run.
func runGroupOf(t *testing.T, db *DB, members []member) map[string]*memberOutcome {
	t.Helper()
	ctx := context.Background()
	held, release := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		holder <- db.Write(ctx, func(*sql.Tx) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held

	var mu sync.Mutex
	out := map[string]*memberOutcome{}
	var wg sync.WaitGroup
	cancels := map[string]context.CancelFunc{}
	for _, m := range members {
		o := &memberOutcome{}
		out[m.name] = o
		mctx, cancel := context.WithCancel(ctx)
		cancels[m.name] = cancel
		wg.Go(func() {
			defer cancel()
			defer func() {
				if v := recover(); v != nil {
					mu.Lock()
					o.panicked, o.panicVal = true, v
					mu.Unlock()
				}
			}()
			err := db.Write(mctx, func(tx *sql.Tx) error {
				mu.Lock()
				o.ran, o.tx = true, tx
				mu.Unlock()
				if _, err := tx.ExecContext(mctx, `INSERT INTO members (name) VALUES (?)`, m.name); err != nil {
					return err
				}
				db.onCommit(tx, func() {
					mu.Lock()
					o.hooked = true
					mu.Unlock()
				})
				switch m.kind {
				case "fail":
					return fmt.Errorf("%s: %w", m.name, errMember)
				case "panic":
					panic("boom " + m.name)
				case "end":
					if _, err := tx.ExecContext(mctx, `ROLLBACK`); err != nil {
						return err
					}
					return fmt.Errorf("%s: %w", m.name, errMember)
				}
				return nil
			})
			mu.Lock()
			o.err = err
			mu.Unlock()
		})
		waitQueued(t, db, len(out))
	}
	for _, m := range members {
		if m.kind == "cancel" {
			cancels[m.name]()
		}
	}
	// The cancelled callers return before the writer is free.
	for _, m := range members {
		if m.kind == "cancel" {
			waitFor(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return out[m.name].err != nil
			})
		}
	}
	close(release)
	if err := <-holder; err != nil {
		t.Fatalf("holder: %v", err)
	}
	wg.Wait()
	return out
}

func setupGroup(t *testing.T) *DB {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "group.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE members (name TEXT PRIMARY KEY) STRICT`)
		return err
	}); err != nil {
		t.Fatalf("create table: %v", err)
	}
	return db
}

func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	waitFor(t, func() bool {
		db.writes.mu.Lock()
		defer db.writes.mu.Unlock()
		return len(db.writes.calls) == n
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func names(t *testing.T, db *DB) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	err := db.Read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name FROM members ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatalf("read members: %v", err)
	}
	return out
}

// The write profile counts each caller's calls and time and each
// transaction, grouped or alone.
func TestWriteProfile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "profile.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if p := db.WriteProfile(); p.Transactions != 0 || len(p.Callers) != 0 {
		t.Fatalf("profile before ProfileWrites: %+v", p)
	}
	db.ProfileWrites()
	insert := func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, secrets) VALUES (lower(hex(randomblob(8))), '[]')`)
		return err
	}
	for range 3 {
		if err := db.Write(ctx, insert); err != nil {
			t.Fatal(err)
		}
	}
	p := db.WriteProfile()
	if p.Transactions != 3 || p.Held <= 0 || p.Commit <= 0 || p.Commit > p.Held {
		t.Errorf("transactions %d, held %s, commit %s", p.Transactions, p.Held, p.Commit)
	}
	if len(p.Callers) != 1 || p.Callers[0].Calls != 3 || p.Callers[0].Time <= 0 || !strings.Contains(p.Callers[0].Name, "TestWriteProfile") {
		t.Errorf("callers %+v", p.Callers)
	}
}
