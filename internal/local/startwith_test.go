package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/longrun/longrun"
)

// StartWith's writes and the start commit together: a failing write keeps
// nothing of its start, and the starts that shared its batch are kept.
func TestStartWithCommitsTogether(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if err := f.db.Write(f.ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TABLE records (name TEXT PRIMARY KEY)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	errInjected := errors.New("injected")
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("job-%02d", i)
			in := longrun.StateInput{ExecutionID: name, ExecutionARN: f.e.ExecutionARN(name), Input: json.RawMessage(`{}`),
				Limits: longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30}}
			errs[i] = f.e.StartExecutionWith(f.ctx, in, func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO records (name) VALUES (?)`, name); err != nil {
					return err
				}
				if i%3 == 0 {
					return errInjected // after its own write: that must go too
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		name := fmt.Sprintf("job-%02d", i)
		var records, execs int
		if err := f.db.Read(f.ctx, func(tx *sql.Tx) error {
			if err := tx.QueryRow(`SELECT count(*) FROM records WHERE name = ?`, name).Scan(&records); err != nil {
				return err
			}
			return tx.QueryRow(`SELECT count(*) FROM local_executions WHERE name = ?`, name).Scan(&execs)
		}); err != nil {
			t.Fatal(err)
		}
		want := 1
		if i%3 == 0 {
			want = 0
			if !errors.Is(err, errInjected) {
				t.Errorf("%s: StartExecutionWith = %v, want the injected error", name, err)
			}
		} else if err != nil {
			t.Errorf("%s: StartExecutionWith = %v", name, err)
		}
		if records != want || execs != want {
			t.Errorf("%s: %d records and %d executions, want %d and %d", name, records, execs, want, want)
		}
	}
	// An execution that exists already is not started again, so its writes
	// do not run.
	ran := false
	in := longrun.StateInput{ExecutionID: "job-01", ExecutionARN: f.e.ExecutionARN("job-01"), Input: json.RawMessage(`{}`),
		Limits: longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30}}
	if err := f.e.StartExecutionWith(f.ctx, in, func(context.Context, *sql.Tx) error { ran = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if ran {
		t.Error("the writes of a start of a running execution ran")
	}
}
