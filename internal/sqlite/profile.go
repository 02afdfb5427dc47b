package sqlite

import (
	"cmp"
	"database/sql"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Write profile: where the single writer's time goes, by caller, for the
// benchmarks (docs/benchmarks.md). Off unless ProfileWrites is called; on,
// it costs a few clock reads and a map lookup per write.

// WriteProfile is what the writer did since ProfileWrites.
type WriteProfile struct {
	Transactions int64         // committed transactions (a group counts once)
	Held         time.Duration // the writer held: from BEGIN to the end of COMMIT
	Commit       time.Duration // in COMMIT: writing the WAL frames
	Callers      []CallerProfile
}

// CallerProfile is the writes of one function passed to Write.
type CallerProfile struct {
	Name  string        // the function, as the runtime names it
	Calls int64         // times it ran (again after a failed group too)
	Time  time.Duration // in it
}

type profiler struct {
	mu      sync.Mutex
	p       WriteProfile
	callers map[uintptr]*CallerProfile
}

// ProfileWrites starts (or restarts) recording the write profile.
func (db *DB) ProfileWrites() {
	db.prof.Store(&profiler{callers: map[uintptr]*CallerProfile{}})
}

// WriteProfile returns the profile recorded since ProfileWrites, callers
// with the most time first; zero if it was never called.
func (db *DB) WriteProfile() WriteProfile {
	pr := db.prof.Load()
	if pr == nil {
		return WriteProfile{}
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	out := pr.p
	for _, c := range pr.callers {
		out.Callers = append(out.Callers, *c)
	}
	slices.SortFunc(out.Callers, func(a, b CallerProfile) int { return cmp.Compare(b.Time, a.Time) })
	return out
}

// call runs fn in tx, recording it if profiling.
func (db *DB) call(fn func(tx *sql.Tx) error, tx *sql.Tx) error {
	pr := db.prof.Load()
	if pr == nil {
		return fn(tx)
	}
	t0 := time.Now()
	err := fn(tx)
	d := time.Since(t0)
	pc := reflect.ValueOf(fn).Pointer()
	pr.mu.Lock()
	defer pr.mu.Unlock()
	c := pr.callers[pc]
	if c == nil {
		name := "?"
		if f := runtime.FuncForPC(pc); f != nil {
			name = strings.TrimPrefix(f.Name(), "github.com/longrun/longrun/")
		}
		c = &CallerProfile{Name: name}
		pr.callers[pc] = c
	}
	c.Calls++
	c.Time += d
	return err
}

// txProfile times one transaction of the writer.
type txProfile struct {
	pr     *profiler
	begin  time.Time
	commit time.Time
}

func (db *DB) startTx() txProfile {
	pr := db.prof.Load()
	if pr == nil {
		return txProfile{}
	}
	return txProfile{pr: pr, begin: time.Now()}
}

func (t *txProfile) committing() {
	if t.pr != nil {
		t.commit = time.Now()
	}
}

func (t *txProfile) committed() {
	if t.pr == nil {
		return
	}
	now := time.Now()
	t.pr.mu.Lock()
	defer t.pr.mu.Unlock()
	t.pr.p.Transactions++
	t.pr.p.Held += now.Sub(t.begin)
	t.pr.p.Commit += now.Sub(t.commit)
}
