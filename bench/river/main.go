// Command river is the peer in longrun's benchmarks: River (riverqueue.com), a
// well-regarded Go job queue, on its SQLite driver, burning down no-op jobs the
// way longrun's BenchmarkEndToEnd burns down no-op executions — clients insert
// one job per transaction while workers run them — so `make bench` can print
// longrun's executions/s as a ratio of River's jobs/s measured in the same run.
//
// It is a module of its own so River is never a dependency of longrun.
// docs/benchmarks.md has the command, the settings and the results.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	_ "modernc.org/sqlite"
)

type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "river bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("river", flag.ContinueOnError)
	jobs := fs.Int("jobs", 3000, "jobs to insert and work")
	clients := fs.Int("clients", 32, "goroutines inserting one job per transaction")
	workers := fs.Int("workers", 32, "River MaxWorkers of the queue")
	cooldown := fs.Duration("fetch-cooldown", time.Millisecond, "River FetchCooldown (1 ms is River's minimum: the fastest it will fetch)")
	poll := fs.Duration("fetch-poll", time.Millisecond, "River FetchPollInterval (SQLite has no LISTEN/NOTIFY: workers poll)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "river-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The same durability as longrun's SQLite: WAL, synchronous=NORMAL.
	dsn := "file:" + filepath.Join(dir, "river.db") +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("open sqlite: %w", err)
	}
	defer db.Close()
	// River's SQLite driver asks for one connection (its package doc).
	db.SetMaxOpenConns(1)

	driver := riversqlite.New(db)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}

	w := river.NewWorkers()
	river.AddWorker(w, noopWorker{})
	client, err := river.NewClient(driver, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: *workers}},
		Workers:           w,
		FetchCooldown:     *cooldown,
		FetchPollInterval: *poll,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}
	completed, cancelSub := client.Subscribe(river.EventKindJobCompleted)
	defer cancelSub()
	if err := client.Start(ctx); err != nil {
		return fmt.Errorf("river start: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	}()

	begin := time.Now()
	var next atomic.Int64
	var insertErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range *clients {
		wg.Go(func() {
			for next.Add(1) <= int64(*jobs) {
				if _, err := client.Insert(ctx, noopArgs{}, nil); err != nil {
					once.Do(func() { insertErr = err })
					return
				}
			}
		})
	}
	deadline := time.After(5 * time.Minute)
	for done := 0; done < *jobs; {
		select {
		case ev := <-completed:
			if ev == nil {
				return errors.New("river closed its subscription")
			}
			done++
		case <-deadline:
			return fmt.Errorf("only %d of %d jobs completed in 5 minutes", done, *jobs)
		}
	}
	elapsed := time.Since(begin)
	wg.Wait()
	if insertErr != nil {
		return fmt.Errorf("insert: %w", insertErr)
	}
	// The same shape as a Go benchmark's custom metric, so one parser reads both.
	fmt.Printf("BenchmarkRiverNoop\t%d\t%.0f jobs/s\n", *jobs, float64(*jobs)/elapsed.Seconds())
	return nil
}
