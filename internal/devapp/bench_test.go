package devapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
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
func BenchmarkEndToEnd(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app, err := devapp.Open(ctx, devapp.Config{
		DataDir:      b.TempDir(),
		TemplatePath: filepath.Join("..", "..", "template.yaml"),
		Jobs:         registryOf(noop.Job),
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

	b.ResetTimer()
	begin := time.Now()
	var next atomic.Int64
	ids := make([]string, b.N)
	startLat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
				d, out, err := call("/start-execution", map[string]any{"input": map[string]int{"n": i}})
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
