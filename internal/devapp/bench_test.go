package devapp_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/sqlite"
	"github.com/longrun/longrun/internal/tenant"
	"github.com/longrun/longrun/jobs/noop"
)

// BenchmarkEndToEnd measures whole executions through the real local app:
// POST /start-execution over HTTP on loopback, the state machine on the local
// engine, the task message through the SQLite queue, the in-process worker
// running a no-op job, SendTaskSuccess, notify recording the outcome — all on
// one WAL-mode SQLite file. It reports executions/s from the first start to
// the last SUCCEEDED, and p50/p99 latencies of start and describe as seen by
// a client. docs/benchmarks.md has the command and the numbers.
// -writeprofile prints where the single SQLite writer's time went per
// execution (sqlite.DB.ProfileWrites).
var writeProfile = flag.Bool("writeprofile", false, "print the SQLite writer's profile per execution")

// -pageprofile prints, per table and index, the bytes each execution
// wrote to the WAL, those the checkpoints copied into the file, and those
// left in the file (sqlite.DB.ProfilePages, dbstat).
var pageProfile = flag.Bool("pageprofile", false, "print the bytes written and kept per table, per execution")

func BenchmarkEndToEnd(b *testing.B) {
	endToEnd(b, noop.Job, func(i int) any { return map[string]int{"n": i} })
}

// BenchmarkPayload64K is BenchmarkEndToEnd with 64 KiB in and 64 KiB out:
// every execution's input carries 64 KiB of random base64 text (so neither
// compression nor sharing between executions flatters it) and its job
// returns another 64 KiB. Besides executions/s it reports the bytes the
// process wrote to the disk per execution (write_bytes of /proc/self/io:
// the WAL, and the checkpoints into the database file) and the database's
// size per execution at the end (what the executions keep).
func BenchmarkPayload64K(b *testing.B) {
	const size = 64 << 10
	job := func(_ context.Context, input json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
		var in struct{ N int }
		if err := json.Unmarshal(input, &in); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"n": in.N, "result": randomText(int64(-in.N-1), size)})
	}
	endToEnd(b, job, func(i int) any { return map[string]any{"n": i, "data": randomText(int64(i), size)} })
}

// randomText is n bytes of base64 text from seed.
func randomText(seed int64, n int) string {
	raw := make([]byte, n*3/4)
	r := rand.New(rand.NewPCG(uint64(seed), 12))
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// diskWrites is the bytes this process has caused to be written to storage
// (Linux /proc/self/io write_bytes), or -1 where it cannot be read.
func diskWrites() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// dirSize is the size of the files in dir (the database, its WAL and SHM).
func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}

func endToEnd(b *testing.B, job longrun.Job, input func(i int) any) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := b.TempDir()
	app, err := devapp.Open(ctx, devapp.Config{
		DataDir:      dir,
		TemplatePath: filepath.Join("..", "..", "template.yaml"),
		Jobs:         registryOf(job),
		Workers:      32,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	key, err := tenant.CreateKey(ctx, app.Tenants, "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	const clients = 32
	call := func(path string, body any) (time.Duration, []byte, error) {
		data, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+key.APIKey)
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return 0, nil, fmt.Errorf("%s: %d %s", path, resp.StatusCode, out)
		}
		return time.Since(t0), out, nil
	}

	if *writeProfile {
		app.DB.ProfileWrites()
	}
	var keptBefore map[string]int64
	if *pageProfile {
		app.DB.ProfilePages()
		keptBefore = tableSizes(ctx, b, app)
	}
	sizeBefore := dirSize(dir)
	b.ResetTimer()
	written := diskWrites()
	begin := time.Now()
	var next atomic.Int64
	ids := make([]string, b.N)
	startLat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
				d, out, err := call("/start-execution", map[string]any{"input": input(i)})
				if err != nil {
					b.Error(err)
					return
				}
				var e struct{ ExecutionID string }
				_ = json.Unmarshal(out, &e)
				ids[i], startLat[i] = e.ExecutionID, d
			}
		})
	}
	wg.Wait()
	waitAllEnded(ctx, b, app)
	elapsed := time.Since(begin)
	b.StopTimer()
	if w := diskWrites(); w >= 0 && written >= 0 {
		b.ReportMetric(float64(w-written)/float64(b.N), "disk-B/exec")
	}
	b.ReportMetric(float64(dirSize(dir)-sizeBefore)/float64(b.N), "stored-B/exec")
	if *writeProfile && b.N > 1 {
		logWriteProfile(b, app.DB.WriteProfile(), elapsed)
	}
	if *pageProfile && b.N > 1 {
		logPageProfile(b, app.DB.PageProfile(), keptBefore, tableSizes(ctx, b, app))
	}

	for _, id := range ids {
		e, err := app.Executions.GetExecution(ctx, "", id)
		if err != nil || e.Status != longrun.StatusSucceeded {
			b.Fatalf("execution %s: %v %v", id, e, err)
		}
	}

	// Describe latency, on the finished executions, with the same clients.
	describeLat := make([]time.Duration, b.N)
	next.Store(0)
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
				d, _, err := call("/describe-execution", map[string]string{"executionId": ids[i]})
				if err != nil {
					b.Error(err)
					return
				}
				describeLat[i] = d
			}
		})
	}
	wg.Wait()

	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "executions/s")
	b.ReportMetric(ms(percentile(startLat, 50)), "start-p50-ms")
	b.ReportMetric(ms(percentile(startLat, 99)), "start-p99-ms")
	b.ReportMetric(ms(percentile(describeLat, 50)), "describe-p50-ms")
	b.ReportMetric(ms(percentile(describeLat, 99)), "describe-p99-ms")
	b.ReportMetric(0, "ns/op") // the per-op time of a pipelined run says nothing
	cancel()
	if err := <-served; err != nil {
		b.Fatal(err)
	}
}

// logWriteProfile prints p per execution of the run.
func logWriteProfile(b *testing.B, p sqlite.WriteProfile, elapsed time.Duration) {
	n := float64(b.N)
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / n }
	var sb strings.Builder
	fmt.Fprintf(&sb, "writer held %.0f%% of the run; per execution: %.2f transactions, held %.0f µs, of which COMMIT %.0f µs\n",
		100*p.Held.Seconds()/elapsed.Seconds(), float64(p.Transactions)/n, us(p.Held), us(p.Commit))
	fmt.Fprintf(&sb, "%-64s %8s %8s\n", "caller", "calls", "µs")
	for _, c := range p.Callers {
		fmt.Fprintf(&sb, "%-64s %8.2f %8.1f\n", c.Name, float64(c.Calls)/n, us(c.Time))
	}
	fmt.Printf("%s (N=%d)\n%s", b.Name(), b.N, sb.String()) // b.Log would cut it short
}

// tableSizes is the bytes of the file's pages per table and index (dbstat).
func tableSizes(ctx context.Context, b *testing.B, app *devapp.App) map[string]int64 {
	sizes := map[string]int64{}
	err := app.DB.Read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name, sum(pgsize) FROM dbstat GROUP BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var n int64
			if err := rows.Scan(&name, &n); err != nil {
				return err
			}
			sizes[name] = n
		}
		return rows.Err()
	})
	if err != nil {
		b.Fatal(err)
	}
	return sizes
}

// logPageProfile prints p and the growth of each table per execution.
func logPageProfile(b *testing.B, p sqlite.PageProfile, before, after map[string]int64) {
	n := int64(b.N)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-44s %12s %12s %12s\n", "table or index (bytes per execution)", "WAL", "checkpoint", "kept")
	var wal, ckpt, kept int64
	for _, t := range p.Tables {
		w, c, k := t.WALFrames*(p.PageSize+24)/n, t.Checkpointed*p.PageSize/n, (after[t.Name]-before[t.Name])/n
		wal, ckpt, kept = wal+w, ckpt+c, kept+k
		if w+c >= 1000 {
			fmt.Fprintf(&sb, "%-44s %12d %12d %12d\n", t.Name, w, c, k)
		}
	}
	fmt.Fprintf(&sb, "%-44s %12d %12d %12d\n", "all (rows under 1000 B left out above)", wal, ckpt, kept)
	fmt.Printf("%s (N=%d)\n%s", b.Name(), b.N, sb.String())
}

// waitAllEnded polls the store (not the API, so the polling does not compete
// with the measured requests) until no execution is RUNNING.
func waitAllEnded(ctx context.Context, b *testing.B, app *devapp.App) {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		page, err := app.Executions.ListExecutions(ctx, "bench", longrun.ListQuery{Status: longrun.StatusRunning, Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		if len(page.Executions) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatal("executions still RUNNING after 5 minutes")
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// registryOf returns a registry whose default kind runs job.
func registryOf(job longrun.Job) *longrun.Registry {
	r := longrun.NewRegistry()
	r.Handle("noop", job, longrun.JobOptions{})
	return r
}
