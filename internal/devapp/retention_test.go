package devapp_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/fakeclock"
	"github.com/longrun/longrun/internal/tenant"
	"github.com/longrun/longrun/jobs/noop"
)

// The sweeper, on the injected clock, deletes what ended longer than the
// retention ago — records, engine executions, history — and nothing newer.
func TestRetentionSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := fakeclock.New()
	app, c, swept := serveRetained(t, clock)

	old := []string{c.start(t), c.start(t), c.start(t)}
	for _, id := range old {
		waitStatus(t, app, id, longrun.StatusSucceeded)
	}
	waitIdle(t, app)
	<-swept // the sweep at start
	clock.Advance(30 * time.Minute)
	<-swept
	recent := c.start(t)
	waitStatus(t, app, recent, longrun.StatusSucceeded)
	waitIdle(t, app)
	if n := count(t, app, `SELECT count(*) FROM executions`); n != 4 {
		t.Fatalf("%d records after a sweep within the retention, want 4", n)
	}

	clock.Advance(31 * time.Minute) // the first three ended 61 minutes ago, the last 31
	<-swept
	for _, id := range old {
		if _, err := app.Executions.GetExecution(ctx, "acme", id); !longrun.IsCode(err, longrun.ENOTFOUND) {
			t.Errorf("execution %s past the retention: %v, want ENOTFOUND", id, err)
		}
	}
	if _, err := app.Executions.GetExecution(ctx, "acme", recent); err != nil {
		t.Errorf("execution within the retention: %v", err)
	}
	if n := count(t, app, `SELECT count(*) FROM local_executions`); n != 1 {
		t.Errorf("%d engine executions left, want 1", n)
	}
	if n := count(t, app, `SELECT count(DISTINCT arn) FROM local_history`); n != 1 {
		t.Errorf("history of %d executions left, want 1", n)
	}
}

// serveRetained serves an app on clock with a one-hour retention until the
// test ends; swept receives after every sweep (one runs at start).
func serveRetained(t *testing.T, clock *fakeclock.Clock) (*devapp.App, *client, <-chan struct{}) {
	t.Helper()
	app := openApp(t, devapp.Config{Jobs: registryOf(noop.Job), Retention: time.Hour, Clock: clock})
	swept := make(chan struct{}, 16)
	app.OnSweep(func() { swept <- struct{}{} }) // before Serve: it sweeps at start
	key, err := tenant.CreateKey(context.Background(), app.Tenants, "acme", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return app, newClient(t, listen(t, app), key.APIKey), swept
}

func count(t *testing.T, app *devapp.App, query string) int {
	t.Helper()
	var n int
	if err := app.DB.Read(context.Background(), func(tx *sql.Tx) error { return tx.QueryRow(query).Scan(&n) }); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitStatus(t *testing.T, app *devapp.App, id string, want longrun.Status) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err := app.Executions.GetExecution(context.Background(), "", id)
		if err == nil && e.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s: %v %v, want %s", id, e, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitIdle waits until the engine runs nothing: the record of an execution
// is final (notify) just before the engine's execution ends.
func waitIdle(t *testing.T, app *devapp.App) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for count(t, app, `SELECT count(*) FROM local_executions WHERE status = 'RUNNING'`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the engine still runs executions after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
