package devapp_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/tenant"
	"github.com/longrun/longrun/jobs/noop"
)

// BenchmarkStartup100k measures `longrun dev`'s start-up on a data directory
// holding 100,000 finished executions (records, engine rows and history,
// copies of a real one): from Open to the first start-execution accepted,
// then a clean Close. It reports ms per start-up.
func BenchmarkStartup100k(b *testing.B) {
	const finished = 100_000
	ctx := context.Background()
	dir := b.TempDir()
	cfg := devapp.Config{DataDir: dir, TemplatePath: filepath.Join("..", "..", "template.yaml"), Jobs: registryOf(noop.Job)}

	// One real execution, then its rows copied under other ids.
	app, url, stop := serveBench(ctx, b, cfg)
	key, err := tenant.CreateKey(ctx, app.Tenants, "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if err := startOne(url, key.APIKey); err != nil {
		b.Fatal(err)
	}
	waitAllEnded(ctx, b, app)
	err = app.DB.Write(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO executions (id, tenant, arn, name, status, input, output, error, cause, progress, callback_url,
				start_date, stop_date, webhook, idempotency_key, request_hash, job)
			SELECT id || '-' || i, tenant, arn || '-' || i, name, status, input, output, error, cause, progress, callback_url,
				start_date, stop_date, webhook, '', request_hash, job FROM executions, n`,
			`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO local_executions (arn, machine, name, status, state, input, output, error, cause, start_ms, stop_ms, run)
			SELECT arn || '-' || i, machine, name || '-' || i, status, state, input, output, error, cause, start_ms, stop_ms, run
			FROM local_executions, n`,
			`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO local_history (arn, first, ts, events) SELECT arn || '-' || i, first, ts, events FROM local_history, n`,
		} {
			if _, err := tx.ExecContext(ctx, q, finished-1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	stop()
	if err := app.Close(); err != nil {
		b.Fatal(err)
	}

	var total time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		app, url, stop := serveBench(ctx, b, cfg)
		if err := startOne(url, key.APIKey); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		b.StopTimer()
		if n := countRows(b, app, `SELECT count(*) FROM local_executions`); n < finished {
			b.Fatalf("%d executions in the file, want at least %d", n, finished)
		}
		waitAllEnded(ctx, b, app)
		stop()
		if err := app.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "startup-ms")
	b.ReportMetric(0, "ns/op") // startup-ms is the measure, not the loop's
}

// serveBench opens the app on cfg and serves it on a loopback port.
func serveBench(ctx context.Context, b *testing.B, cfg devapp.Config) (app *devapp.App, url string, stop func()) {
	b.Helper()
	ctx, cancel := context.WithCancel(ctx)
	app, err := devapp.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	return app, "http://" + ln.Addr().String(), func() {
		cancel()
		if err := <-served; err != nil {
			b.Error(err)
		}
	}
}

func startOne(url, key string) error {
	req, _ := http.NewRequest(http.MethodPost, url+"/start-execution", bytes.NewReader([]byte(`{"input":{}}`)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start-execution: %s", resp.Status)
	}
	return nil
}

func countRows(b *testing.B, app *devapp.App, query string) int {
	b.Helper()
	var n int
	if err := app.DB.Read(context.Background(), func(tx *sql.Tx) error { return tx.QueryRow(query).Scan(&n) }); err != nil {
		b.Fatal(err)
	}
	return n
}
