// Command soak is `make soak`: longrun dev under steady load for a long
// time, to show that nothing grows without bound. It serves the whole local
// app in-process on a loopback port (no-op jobs, retention shortened so it
// is reached within the run), measures the sustainable start rate (or takes
// -rate), then starts executions over HTTP at half that rate, open loop, for
// -duration, sampling every -every: the WAL and database file sizes, the
// process's RSS and the p99 start latency of the interval. With -webhooks,
// every start carries a callback URL to a receiver in the same process, and
// each interval also has the p99 from sending the start to receiving its
// webhook. It writes the samples as CSV and draws them as an SVG chart
// (docs/benchmarks.md).
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/tenant"
	"github.com/longrun/longrun/jobs/noop"
)

func main() {
	duration := flag.Duration("duration", 10*time.Minute, "how long to run at half the sustainable rate")
	every := flag.Duration("every", 10*time.Second, "sampling interval")
	rate := flag.Float64("rate", 0, "starts per second (0: half the rate measured first)")
	calibrate := flag.Duration("calibrate", 20*time.Second, "how long to measure the sustainable rate")
	retention := flag.Duration("retention", 2*time.Minute, "retention of ended executions (short, so it is reached within the run)")
	workers := flag.Int("workers", 16, "in-process workers")
	out := flag.String("out", "docs", "directory for soak.csv and soak.svg")
	template := flag.String("template", "template.yaml", "the SAM template")
	webhooks := flag.Bool("webhooks", false, "every start has a callback URL to a receiver in this process: measures start-to-webhook latency")
	flag.Parse()
	if err := run(*duration, *every, *rate, *calibrate, *retention, *workers, *out, *template, *webhooks); err != nil {
		log.Fatal(err)
	}
}

type sample struct {
	at                 time.Duration
	walMB, dbMB, rssMB float64
	p99ms              float64
	webhookP99ms       float64 // start sent to webhook received; 0 without -webhooks
	webhooks           int     // webhooks received in the interval
	started, failed    int
	running            int
}

func run(duration, every time.Duration, rate float64, calibrate, retention time.Duration, workers int, out, template string, webhooks bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "longrun-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := devapp.Open(ctx, devapp.Config{DataDir: dir, TemplatePath: template, Jobs: noopJobs(), Workers: workers, Retention: retention,
		AllowLoopbackWebhooks: webhooks})
	if err != nil {
		return err
	}
	defer app.Close()
	key, err := tenant.CreateKey(ctx, app.Tenants, "soak", time.Now())
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	l := &load{url: "http://" + ln.Addr().String(), key: key.APIKey,
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}}
	if webhooks {
		hln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: http.HandlerFunc(l.receive), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(hln) }()
		defer hs.Close()
		l.callback = "http://" + hln.Addr().String() + "/hook"
	}

	if rate == 0 {
		sustained, err := l.closedLoop(ctx, app, calibrate)
		if err != nil {
			return err
		}
		rate = sustained / 2
		log.Printf("sustainable rate %.0f executions/s (closed loop, %s); soaking at %.0f/s", sustained, calibrate, rate)
	}

	var samples []sample
	begin := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { l.openLoop(ctx, rate, stop) })
	ticker := time.NewTicker(every)
	for time.Since(begin) < duration {
		<-ticker.C
		lat, started, failed := l.take()
		hooks := l.takeWebhooks()
		s := sample{
			webhookP99ms: percentile(hooks, 99), webhooks: len(hooks),
			at:      time.Since(begin),
			walMB:   fileMB(app.DB.Path() + "-wal"),
			dbMB:    fileMB(app.DB.Path()),
			rssMB:   rssMB(),
			p99ms:   percentile(lat, 99),
			started: started, failed: failed,
			running: app.Engine.Running(),
		}
		samples = append(samples, s)
		log.Printf("t=%4.0fs wal=%6.1fMB db=%6.1fMB rss=%6.1fMB p99=%6.1fms webhook-p99=%6.1fms started=%d webhooks=%d failed=%d running=%d",
			s.at.Seconds(), s.walMB, s.dbMB, s.rssMB, s.p99ms, s.webhookP99ms, s.started, s.webhooks, s.failed, s.running)
	}
	ticker.Stop()
	close(stop)
	wg.Wait()
	cancel()
	if err := <-served; err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(out, "soak.csv"), samples); err != nil {
		return err
	}
	title := fmt.Sprintf("longrun dev soak: %.0f starts/s for %s, retention %s, %d workers", rate, duration, retention, workers)
	return os.WriteFile(filepath.Join(out, "soak.svg"), chart(title, samples), 0o644)
}

// load is the HTTP client side: starts, with their latencies collected
// until take.
type load struct {
	url, key string
	hc       *http.Client
	callback string // the webhook receiver's URL; "" for none

	mu      sync.Mutex
	lat     []time.Duration
	started int
	failed  int

	sent  sync.Map // start number -> time.Time it was sent, until its webhook
	hooks []time.Duration
}

func (l *load) start(ctx context.Context, i int) error {
	start := map[string]any{"input": map[string]int{"i": i}}
	if l.callback != "" {
		start["callbackUrl"] = l.callback
	}
	body, _ := json.Marshal(start)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url+"/start-execution", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+l.key)
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	if l.callback != "" {
		l.sent.Store(i, t0)
	}
	resp, err := l.hc.Do(req)
	d := time.Since(t0)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			err = fmt.Errorf("start: %s", resp.Status)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		return err
	}
	l.started++
	l.lat = append(l.lat, d)
	return nil
}

// receive is the webhook receiver: the no-op job echoes its input, so the
// event's output names the start it ends.
func (l *load) receive(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var ev struct {
		Data struct {
			Output struct{ I int } `json:"output"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	t0, ok := l.sent.LoadAndDelete(ev.Data.Output.I)
	if !ok {
		return // a redelivery, or a start sent before -webhooks took effect
	}
	l.mu.Lock()
	l.hooks = append(l.hooks, at.Sub(t0.(time.Time)))
	l.mu.Unlock()
}

func (l *load) takeWebhooks() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	hooks := l.hooks
	l.hooks = nil
	return hooks
}

func (l *load) take() ([]time.Duration, int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lat, started, failed := l.lat, l.started, l.failed
	l.lat, l.started, l.failed = nil, 0, 0
	return lat, started, failed
}

// closedLoop starts as fast as 32 clients can for d and returns the rate at
// which executions finished: what the machine sustains end to end.
func (l *load) closedLoop(ctx context.Context, app *devapp.App, d time.Duration) (float64, error) {
	var n atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				_ = l.start(ctx, int(n.Add(1)))
			}
		})
	}
	wg.Wait()
	_, started, _ := l.take()
	// Wait for the backlog to drain: the rate is what finished, not what
	// was accepted.
	for app.Engine.Running() > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := d + time.Since(deadline)
	if started == 0 {
		return 0, errors.New("calibration: no start succeeded")
	}
	return float64(started) / elapsed.Seconds(), nil
}

// openLoop starts rate executions per second, whatever the latency, until
// stop is closed.
func (l *load) openLoop(ctx context.Context, rate float64, stop <-chan struct{}) {
	const tick = 10 * time.Millisecond
	jobs := make(chan int, 100000)
	var wg sync.WaitGroup
	for range 128 {
		wg.Go(func() {
			for i := range jobs {
				_ = l.start(ctx, i)
			}
		})
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	begin := time.Now()
	sent := 0
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-t.C:
		}
		due := int(time.Since(begin).Seconds() * rate)
		for ; sent < due; sent++ {
			select {
			case jobs <- sent:
			default: // the clients cannot keep up: counted as failed starts
				l.mu.Lock()
				l.failed++
				l.mu.Unlock()
			}
		}
	}
	close(jobs)
	wg.Wait()
}

func fileMB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}

// rssMB is this process's resident set (Linux), the app and the load
// generator together.
func rssMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func percentile(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := min(len(ds)-1, len(ds)*p/100)
	return float64(ds[i].Microseconds()) / 1000
}

func writeCSV(path string, samples []sample) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"seconds", "wal_mb", "db_mb", "rss_mb", "start_p99_ms", "webhook_p99_ms", "starts", "webhooks", "failed", "running"})
	for _, s := range samples {
		_ = w.Write([]string{
			strconv.FormatFloat(s.at.Seconds(), 'f', 0, 64),
			strconv.FormatFloat(s.walMB, 'f', 2, 64),
			strconv.FormatFloat(s.dbMB, 'f', 2, 64),
			strconv.FormatFloat(s.rssMB, 'f', 1, 64),
			strconv.FormatFloat(s.p99ms, 'f', 2, 64),
			strconv.FormatFloat(s.webhookP99ms, 'f', 2, 64),
			strconv.Itoa(s.started), strconv.Itoa(s.webhooks), strconv.Itoa(s.failed), strconv.Itoa(s.running),
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// chart draws one panel per measure, time on the x axis, each scaled from 0
// to a little above its maximum.
func chart(title string, samples []sample) []byte {
	panels := []struct {
		name, unit string
		value      func(sample) float64
	}{
		{"WAL size", "MB", func(s sample) float64 { return s.walMB }},
		{"database size", "MB", func(s sample) float64 { return s.dbMB }},
		{"RSS (app + load generator)", "MB", func(s sample) float64 { return s.rssMB }},
		{"start p99", "ms", func(s sample) float64 { return s.p99ms }},
	}
	const (
		width, panelH, left, right, top, gap = 760, 150, 70, 20, 40, 40
	)
	height := top + len(panels)*(panelH+gap)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="22" font-size="14" font-weight="bold">%s</text>`+"\n", left, escape(title))
	var end float64
	if len(samples) > 0 {
		end = samples[len(samples)-1].at.Seconds()
	}
	plotW := float64(width - left - right)
	for i, p := range panels {
		y0 := float64(top + i*(panelH+gap) + 20)
		var hi float64
		for _, s := range samples {
			hi = max(hi, p.value(s))
		}
		hi = niceCeil(hi)
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-weight="bold">%s (%s)</text>`+"\n", left, y0-6, escape(p.name), p.unit)
		fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%.0f" height="%d" fill="none" stroke="#999"/>`+"\n", left, y0, plotW, panelH)
		for _, frac := range []float64{0, 0.5, 1} {
			y := y0 + float64(panelH)*(1-frac)
			fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="end">%s</text>`+"\n", left-6, y+4, strconv.FormatFloat(hi*frac, 'g', 4, 64))
			if frac == 0.5 {
				fmt.Fprintf(&b, `<line x1="%d" x2="%.0f" y1="%.0f" y2="%.0f" stroke="#eee"/>`+"\n", left, float64(left)+plotW, y, y)
			}
		}
		var pts []string
		for _, s := range samples {
			x := float64(left)
			if end > 0 {
				x += plotW * s.at.Seconds() / end
			}
			y := y0 + float64(panelH)
			if hi > 0 {
				y -= float64(panelH) * p.value(s) / hi
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end" fill="#666">%.0f s</text>`+"\n", float64(left)+plotW, y0+float64(panelH)+14, end)
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" fill="#666">0 s</text>`+"\n", left, y0+float64(panelH)+14)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for p > v*10 {
		p /= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func escape(s string) string {
	var b strings.Builder
	_ = xmlEscape(&b, s)
	return b.String()
}

func xmlEscape(w io.Writer, s string) error {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	_, err := r.WriteString(w, s)
	return err
}

// noopJobs is a registry whose only kind does nothing: the soak measures the
// engine, not a job.
func noopJobs() *longrun.Registry {
	reg := longrun.NewRegistry()
	reg.Handle("noop", noop.Job, longrun.JobOptions{})
	return reg
}
