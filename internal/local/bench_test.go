package local

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/sqlite"
)

// -writeprofile prints where the single SQLite writer's time went per
// execution (sqlite.DB.ProfileWrites), as internal/devapp's benchmarks do.
var writeProfile = flag.Bool("writeprofile", false, "print the SQLite writer's profile per execution")

// BenchmarkExecutions runs whole executions of the real longrun.asl.json end
// to end on a WAL SQLite file: StartExecution, the task message through the
// local queue to an in-process no-op worker (receive, SendTaskSuccess,
// delete), Finalize invoking a no-op notify, the end. It reports
// executions/s.
//
//	go test -run '^$' -bench BenchmarkExecutions -benchtime 20000x ./internal/local/
func BenchmarkExecutions(b *testing.B) {
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	e, queue, db := benchEngine(ctx, b)
	var ended, failed atomic.Int64
	all := make(chan struct{})
	e.onFinish = func(_ string, status longrun.Status) {
		if status != longrun.StatusSucceeded {
			failed.Add(1)
		}
		if ended.Add(1) == int64(b.N) {
			close(all)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = e.Run(ctx) })

	// The worker: batches of ten, each message completed and deleted
	// concurrently, as the worker poller does.
	const receivers = 4
	for range receivers {
		wg.Go(func() {
			for ctx.Err() == nil {
				msgs, err := queue.Receive(ctx, sqlite.MaxReceive, time.Second, time.Minute)
				if err != nil {
					continue
				}
				var done sync.WaitGroup
				for _, m := range msgs {
					done.Go(func() {
						var tm longrun.TaskMessage
						if err := json.Unmarshal([]byte(m.Body), &tm); err != nil {
							b.Error(err)
							return
						}
						if err := e.SendTaskSuccess(ctx, tm.TaskToken, json.RawMessage(`{"ok":true}`)); err != nil && ctx.Err() == nil {
							b.Error(err)
						}
						_ = queue.Delete(ctx, m.Receipt)
					})
				}
				done.Wait()
			}
		})
	}

	if *writeProfile {
		db.ProfileWrites()
	}
	limits := longrun.Limits{TimeoutSeconds: 600, HeartbeatSeconds: 300}
	const starters = 16
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var starting sync.WaitGroup
	for range starters {
		starting.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				id := fmt.Sprintf("bench-%09d", i)
				in := longrun.StateInput{ExecutionID: id, ExecutionARN: e.ExecutionARN(id), Input: json.RawMessage(`{"n":1}`), Limits: limits}
				if err := e.StartExecution(ctx, in); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	starting.Wait()
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d executions ended", ended.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d executions did not succeed", n)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "executions/s")
	if *writeProfile {
		p := db.WriteProfile()
		n := float64(b.N)
		fmt.Printf("%s (N=%d): writer held %.0f%% of the run; per execution %.2f transactions, held %.0f µs, COMMIT %.0f µs\n",
			b.Name(), b.N, 100*p.Held.Seconds()/elapsed.Seconds(), float64(p.Transactions)/n,
			float64(p.Held.Microseconds())/n, float64(p.Commit.Microseconds())/n)
		for _, c := range p.Callers {
			fmt.Printf("  %-60s %6.2f calls %7.1f µs\n", c.Name, float64(c.Calls)/n, float64(c.Time.Microseconds())/n)
		}
	}
}

// BenchmarkMap runs executions of one Map state over 1,000 items, each
// iteration a no-op Pass, on a WAL SQLite file: every iteration is a child
// execution with its own row (branch.go). It reports items/s, the bytes
// allocated per Map and the heap in use at the end.
//
//	go test -run '^$' -bench BenchmarkMap -benchtime 20x ./internal/local/
func BenchmarkMap(b *testing.B) {
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	e, _, _ := benchEngine(ctx, b)
	ended := make(chan longrun.Status, 1)
	e.onFinish = func(_ string, status longrun.Status) { ended <- status }
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = e.Run(ctx) })

	const items = 1000
	in, _ := json.Marshal(map[string]any{"items": make([]struct{}, items)})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := e.Start(ctx, "nopmap", fmt.Sprint("map-", i), in); err != nil {
			b.Fatal(err)
		}
		if status := <-ended; status != longrun.StatusSucceeded {
			b.Fatalf("map %d: %s", i, status)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.N*items)/elapsed.Seconds(), "items/s")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "alloc-MiB/map")
	b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(0, "ns/op")
}

// benchEngine is an engine with no-op functions on a WAL SQLite file
// (closed when b ends) and its jobs queue.
func benchEngine(ctx context.Context, b *testing.B) (*Engine, *sqlite.Queue, *sqlite.DB) {
	b.Helper()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "longrun.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	queue := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	noop := func(context.Context, json.RawMessage) (json.RawMessage, error) { return json.RawMessage(`{}`), nil }
	e, err := New(ctx, testConfig(b, db, queue, map[string]Function{"notify": noop, "events": noop, "echo": noop}))
	if err != nil {
		b.Fatal(err)
	}
	return e, queue, db
}

// The SQLite queue is what the engine's faster paths expect: a task message
// stored as a ref to the chunks it already cut, and deleted with the task's
// answer. The engine checks for them at run time, so a signature that
// drifted would only make it quietly slower; this makes it not compile.
var (
	_ refTxQueue = (*sqlite.Queue)(nil)
	_ txDeleter  = (*sqlite.Queue)(nil)
)
