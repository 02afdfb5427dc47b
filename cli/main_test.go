package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/longrun/longrun/client"
	"github.com/longrun/longrun/internal/asl"
	"github.com/longrun/longrun/webhook"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The whole program, through run, on port 0 with a temporary data dir: the
// test is a client of the HTTP API and a webhook hookReceiver, nothing more.

// devStack is one `longrun dev` started by a test.
type devStack struct {
	URL, APIKey, Secret string
	Client              *client.Client
	stop                func() // ends the program and waits for it
}

var bannerURL = regexp.MustCompile(`LONGRUN_URL=(\S+)`)
var bannerKey = regexp.MustCompile(`LONGRUN_API_KEY=(\S+)`)
var bannerSecret = regexp.MustCompile(`LONGRUN_WEBHOOK_SECRET=(\S+)`)

// readBanner reads `longrun dev`'s banner from r until the curl line, and keeps
// draining r afterwards so the program never blocks on its stdout.
func readBanner(t *testing.T, r io.Reader) *devStack {
	t.Helper()
	s := &devStack{}
	lines := make(chan string)
	found := make(chan struct{})
	defer close(found)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-found: // banner read: keep draining, drop the rest
			}
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	for s.URL == "" || s.APIKey == "" || s.Secret == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("longrun dev exited before printing its banner")
			}
			if m := bannerURL.FindStringSubmatch(line); m != nil {
				s.URL = m[1]
			}
			if m := bannerKey.FindStringSubmatch(line); m != nil {
				s.APIKey = m[1]
			}
			if m := bannerSecret.FindStringSubmatch(line); m != nil {
				s.Secret = m[1]
			}
		case <-deadline:
			t.Fatal("no banner from longrun dev within 30 s")
		}
	}
	s.Client = client.New(s.URL, s.APIKey)
	return s
}

// startDev runs `longrun dev` in-process through run.
func startDev(t *testing.T, args ...string) *devStack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	full := append([]string{"longrun", "dev", "--addr", "127.0.0.1:0", "--template", repoFile(t, "template.yaml"), "--log-level", "warn"}, args...)
	go func() {
		done <- run(ctx, full, func(string) string { return "" }, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	s := readBanner(t, pr)
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("longrun dev: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Error("longrun dev did not stop within 60 s of cancellation")
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

func repoFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// hookReceiver is a webhook endpoint that verifies every delivery with the
// tenant's secret, answers 503 to the first failFirst deliveries of each
// event, and records the verified events.
type hookReceiver struct {
	t         *testing.T
	srv       *httptest.Server
	mu        sync.Mutex
	secret    string
	failFirst int
	tries     map[string]int
	events    map[string]webhook.Event // by webhook-id, once accepted
	arrived   chan struct{}
}

func newReceiver(t *testing.T, failFirst int) *hookReceiver {
	r := &hookReceiver{t: t, failFirst: failFirst, tries: map[string]int{}, events: map[string]webhook.Event{}, arrived: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	// Verified twice: by our receiver package and by the official Standard
	// Webhooks library, as a receiver would.
	official, err := standardwebhooks.NewWebhook(r.secret)
	if err != nil {
		r.t.Errorf("official library: %v", err)
	}
	if err := webhook.Verify([]string{r.secret}, req.Header, body, time.Now()); err != nil {
		r.t.Errorf("webhook does not verify: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := official.Verify(body, req.Header); err != nil {
		r.t.Errorf("the official Standard Webhooks library refuses the webhook: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get(webhook.HeaderID)
	r.tries[id]++
	if r.tries[id] <= r.failFirst {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		r.t.Errorf("webhook body: %v", err)
	}
	r.events[id] = ev
	w.WriteHeader(http.StatusNoContent)
	r.arrived <- struct{}{}
}

// eventFor waits for the accepted webhook about execution id.
func (r *hookReceiver) eventFor(t *testing.T, id string) webhook.Event {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if ev.Data.ExecutionID == id {
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		select {
		case <-r.arrived:
		case <-deadline:
			t.Fatalf("no webhook for %s within 60 s", id)
		}
	}
}

func waitEnd(t *testing.T, c *client.Client, id string) *client.Execution {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e, err := c.Wait(ctx, id, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("wait for %s: %v", id, err)
	}
	return e
}

func start(t *testing.T, c *client.Client, input, callback string) *client.Execution {
	t.Helper()
	e, err := c.Start(context.Background(), client.StartRequest{Input: json.RawMessage(input), CallbackURL: callback}, "")
	if err != nil {
		t.Fatalf("start %s: %v", input, err)
	}
	if e.Status != "RUNNING" || e.ExecutionID == "" {
		t.Fatalf("start answered %+v", e)
	}
	return e
}

const ramenMessage = "The ramen is boiled. If you don't eat it quickly, it will grow."

func TestDevEndToEnd(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 1) // every event's first attempt fails: each webhook is retried once
	// A 2 s heartbeat: the stopped job's worker hears of the stop within a second.
	dir := t.TempDir()
	s := startDev(t, "--template", fastTemplate(t, dir), "--data-dir", filepath.Join(dir, "data"), "--allow-loopback-webhooks", "--webhook-schedule", "1s,1s,1s")
	rcv.secret = s.Secret
	hook := rcv.srv.URL + "/hooks/longrun"

	ok0 := start(t, s.Client, `{"seconds": 0}`, hook)
	ok1 := start(t, s.Client, `{"seconds": 1}`, hook)
	bad := start(t, s.Client, `{"seconds": 0, "fail": "the pot boiled over"}`, hook)
	long := start(t, s.Client, `{"seconds": 600}`, hook)

	for _, e := range []*client.Execution{ok0, ok1} {
		got := waitEnd(t, s.Client, e.ExecutionID)
		var out struct{ Message string }
		if got.Status != "SUCCEEDED" || json.Unmarshal(got.Output, &out) != nil || out.Message != ramenMessage {
			t.Fatalf("execution %s ended %s with %s, want SUCCEEDED with the ramen message", e.ExecutionID, got.Status, got.Output)
		}
		ev := rcv.eventFor(t, e.ExecutionID)
		if ev.Type != "execution.succeeded" || !bytes.Contains(ev.Data.Output, []byte("ramen is boiled")) {
			t.Fatalf("webhook for %s: %+v", e.ExecutionID, ev)
		}
	}

	failed := waitEnd(t, s.Client, bad.ExecutionID)
	if failed.Status != "FAILED" || failed.Error != "Ramen.Failed" || failed.Cause != "the pot boiled over" {
		t.Fatalf("failing job ended %s %q %q, want FAILED Ramen.Failed with its reason", failed.Status, failed.Error, failed.Cause)
	}
	if ev := rcv.eventFor(t, bad.ExecutionID); ev.Type != "execution.failed" || ev.Data.Error != "Ramen.Failed" {
		t.Fatalf("webhook for the failed job: %+v", ev)
	}

	stopped, err := s.Client.Stop(context.Background(), long.ExecutionID, "", "changed my mind")
	if err != nil {
		t.Fatal(err)
	}
	if stopped.Status != "ABORTED" {
		t.Fatalf("stop answered %s, want ABORTED", stopped.Status)
	}
	if ev := rcv.eventFor(t, long.ExecutionID); ev.Type != "execution.aborted" {
		t.Fatalf("webhook for the stopped job: %+v", ev)
	}

	// Every delivery took two attempts (the hookReceiver refused the first) and
	// describe shows both.
	waitDelivered(t, s.Client, ok1.ExecutionID)
	d, err := s.Client.Describe(context.Background(), ok1.ExecutionID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Webhook.State != "delivered" || len(d.Webhook.Attempts) != 2 || d.Webhook.Attempts[0].StatusCode != 503 || d.Webhook.Attempts[1].StatusCode != 204 {
		t.Fatalf("delivery record %+v, want delivered after 503 then 204", d.Webhook)
	}

	// Another tenant sees none of it: every route answers as for an unknown id.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"longrun", "keys", "create", "--data-dir", filepath.Join(dir, "data"), "--tenant", "globex"},
		func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var globexKey struct{ APIKey string }
	if err := json.Unmarshal(out.Bytes(), &globexKey); err != nil {
		t.Fatal(err)
	}
	globex := client.New(s.URL, globexKey.APIKey)
	ctx := context.Background()
	if _, err := globex.Describe(ctx, ok1.ExecutionID); !client.IsNotFound(err) {
		t.Errorf("another tenant's describe: %v, want 404", err)
	}
	if _, err := globex.Describe(ctx, ok1.ExecutionARN); !client.IsNotFound(err) {
		t.Errorf("another tenant's describe by ARN: %v, want 404", err)
	}
	if _, err := globex.Stop(ctx, ok1.ExecutionID, "", ""); !client.IsNotFound(err) {
		t.Errorf("another tenant's stop: %v, want 404", err)
	}
	if err := globex.Redeliver(ctx, ok1.ExecutionID); !client.IsNotFound(err) {
		t.Errorf("another tenant's redeliver: %v, want 404", err)
	}
	if page, err := globex.List(ctx, "", 100, ""); err != nil || len(page.Executions) != 0 {
		t.Errorf("another tenant's list: %v, %v; want empty", page, err)
	}
	if _, err := s.Client.Describe(ctx, "01a00000-0000-7000-8000-000000000000"); !client.IsNotFound(err) {
		t.Fatalf("unknown execution: %v, want 404", err)
	}

	// A revoked key is refused at once.
	if err := run(ctx, []string{"longrun", "keys", "revoke", "--data-dir", filepath.Join(dir, "data"), "--key", globexKey.APIKey},
		func(string) string { return "" }, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	var p *client.Problem
	if _, err := globex.List(ctx, "", 1, ""); !errors.As(err, &p) || p.Status != 401 {
		t.Fatalf("a revoked key: %v, want 401", err)
	}
}

func waitDelivered(t *testing.T, c *client.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		e, err := c.Describe(context.Background(), id)
		if err == nil && e.Webhook != nil && e.Webhook.State == "delivered" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("webhook of %s not delivered within 30 s", id)
}

// TestMain lets a test re-run this binary as the real `longrun` program, so a
// test can kill -9 it.
func TestMain(m *testing.M) {
	if os.Getenv("LONGRUN_TEST_MAIN") == "1" {
		Main(nil)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDevSurvivesKill9 kills `longrun dev` with SIGKILL while jobs run and
// starts it again on the same data dir, with the template's own (60 s)
// JobHeartbeatSeconds: the restarted process owns the directory, so the
// leases it finds are its dead predecessor's, and it hands their jobs to its
// worker at once. They finish within seconds of the restart, not after a
// lease or a heartbeat timeout, with no task timed out. An execution that
// had ended before the kill is unchanged.
func TestDevSurvivesKill9(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tpl := repoFile(t, "template.yaml")
	data := filepath.Join(dir, "data")
	args := []string{"dev", "--addr", "127.0.0.1:0", "--template", tpl, "--data-dir", data, "--log-level", "warn"}

	first := startProcess(t, args...)
	done := start(t, first.Client, `{"seconds": 0}`, "")
	if e := waitEnd(t, first.Client, done.ExecutionID); e.Status != "SUCCEEDED" {
		t.Fatalf("before the kill: %s", e.Status)
	}
	var victims []string
	for range 3 {
		victims = append(victims, start(t, first.Client, `{"seconds": 2}`, "").ExecutionID)
	}
	for _, id := range victims {
		waitProgress(t, first.Client, id)
	}
	first.stop() // SIGKILL

	restarted := time.Now()
	second := startProcess(t, args...)
	c := client.New(second.URL, first.APIKey) // the key was stored: it survives too
	for _, id := range victims {
		e := waitEnd(t, c, id)
		if e.Status != "SUCCEEDED" {
			t.Fatalf("after kill -9 and restart the job ended %s (%s: %s), want SUCCEEDED", e.Status, e.Error, e.Cause)
		}
	}
	// 2 s jobs run again from the start; the lease (60 s) must not be waited.
	if took := time.Since(restarted); took > 20*time.Second {
		t.Errorf("the killed jobs finished %s after the restart, want seconds", took.Round(time.Millisecond))
	} else {
		t.Logf("the killed jobs finished %s after the restart", took.Round(time.Millisecond))
	}
	if e2, err := c.Describe(context.Background(), done.ExecutionID); err != nil || e2.Status != "SUCCEEDED" {
		t.Fatalf("the execution finished before the kill: %v %v", e2, err)
	}
	second.stop()

	for _, id := range victims {
		history := exec.Command(os.Args[0], "history", "--template", tpl, "--data-dir", data, id)
		history.Env = append(os.Environ(), "LONGRUN_TEST_MAIN=1")
		out, err := history.CombinedOutput()
		if err != nil {
			t.Fatalf("history: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "ExecutionSucceeded") || strings.Contains(string(out), "TimedOut") {
			t.Errorf("history of %s: want ExecutionSucceeded and no timeout:\n%s", id, out)
		}
	}
}

// TestDevOwnsItsDataDir starts a second `longrun dev` on a data dir one
// already serves: it refuses at once, naming the running one, and the first
// goes on serving.
func TestDevOwnsItsDataDir(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"dev", "--addr", "127.0.0.1:0", "--template", repoFile(t, "template.yaml"), "--data-dir", data, "--log-level", "warn"}
	first := startProcess(t, args...)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, os.Args[0], args...)
	second.Env = append(os.Environ(), "LONGRUN_TEST_MAIN=1")
	began := time.Now()
	out, err := second.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("a second longrun dev on the same data dir: err %v (ctx %v), want it to refuse at once\n%s", err, ctx.Err(), out)
	}
	for _, want := range []string{"in use", first.URL, "pid "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	t.Logf("refused in %s: %s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(string(out)))
	if _, err := first.Client.List(context.Background(), "", 1, ""); err != nil {
		t.Fatalf("the first longrun dev stopped serving: %v", err)
	}
}

// fastTemplate copies template.yaml and the state machines with a 2-second
// JobHeartbeatSeconds, so a dead worker is noticed in seconds, not a minute.
func fastTemplate(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(repoFile(t, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)(JobHeartbeatSeconds:\n(?:\s+\w+:.*\n)*?\s+Default:) \d+`)
	fast := re.ReplaceAll(data, []byte("$1 2"))
	if bytes.Equal(fast, data) {
		t.Fatal("template.yaml: could not find JobHeartbeatSeconds' Default")
	}
	if err := os.WriteFile(filepath.Join(dir, "template.yaml"), fast, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "statemachine"), os.DirFS(repoFile(t, "statemachine"))); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "template.yaml")
}

// startProcess runs this test binary as `longrun ARGS` in a child process;
// stop kills it with SIGKILL.
func startProcess(t *testing.T, args ...string) *devStack {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "LONGRUN_TEST_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &syncWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("longrun %s stderr:\n%s", strings.Join(args, " "), stderr.String())
		}
	})
	s := readBanner(t, stdout)
	s.stop = stop
	return s
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// waitProgress waits until the job has reported progress: it is running in
// a worker.
func waitProgress(t *testing.T, c *client.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		e, err := c.Describe(context.Background(), id)
		if err == nil && e.Progress != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("execution %s reported no progress within 30 s", id)
}

// TestCLIClientCommands drives start --wait, describe, list and the asl
// tools through run, as a user types them.
func TestCLIClientCommands(t *testing.T) {
	t.Parallel()
	s := startDev(t, "--data-dir", t.TempDir())
	env := func(k string) string {
		return map[string]string{"LONGRUN_URL": s.URL, "LONGRUN_API_KEY": s.APIKey}[k]
	}
	cli := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"longrun"}, args...), env, strings.NewReader(`{"seconds": 0}`), &out, &errOut)
		return out.String(), errOut.String(), err
	}

	out, _, err := cli("start", "--wait", "-")
	if err != nil || !strings.Contains(out, ramenMessage) {
		t.Fatalf("start --wait: %v\n%s", err, out)
	}
	out, stderr, err := cli("start", "--wait", `{"fail": "no water"}`)
	if ee, ok := err.(*exitError); !ok || ee.code != 2 || !strings.Contains(ee.msg, "Ramen.Failed: no water") {
		t.Fatalf("start --wait of a failing job: err %v, want exit status 2 naming the error\n%s%s", err, out, stderr)
	}
	// Not a terminal: plain lines on stderr, no escape codes; the record as JSON.
	if !strings.Contains(stderr, "started ") || !strings.Contains(stderr, `{"fail": "no water"}`) || !strings.Contains(stderr, "  FAILED") || strings.Contains(stderr+out, "\x1b") || !strings.HasPrefix(out, "{") {
		t.Fatalf("start --wait in a pipe:\nstdout %q\nstderr %q", out, stderr)
	}
	out, _, err = cli("list", "--status", "FAILED")
	if err != nil || strings.Count(out, `"executionId"`) != 1 {
		t.Fatalf("list --status FAILED: %v\n%s", err, out)
	}
	// start prints the input it sent; every client command speaks JSON or text.
	out, _, err = cli("start", "--name", "soup", `{"seconds": 0, "flavour": "miso"}`)
	var started client.Execution
	if err != nil || json.Unmarshal([]byte(out), &started) != nil || !strings.Contains(string(started.Input), "miso") {
		t.Fatalf("start prints the input it sent: %v\n%s", err, out)
	}
	out, _, err = cli("describe", "--output", "text", started.ExecutionID)
	if err != nil || !strings.Contains(out, "execution  "+started.ExecutionID) || !strings.Contains(out, `"flavour":"miso"`) {
		t.Fatalf("describe --output text: %v\n%s", err, out)
	}
	// wait on a terminal: the live line, then the record for people.
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&screen, ptmx); close(copied) }()
	err = run(context.Background(), []string{"longrun", "wait", started.ExecutionID}, env, nil, tty, io.Discard)
	tty.Close()
	<-copied
	ptmx.Close()
	if err != nil || !strings.Contains(screen.String(), "\r\x1b[2K✓  SUCCEEDED") || !strings.Contains(screen.String(), "status     SUCCEEDED") {
		t.Fatalf("wait on a terminal: %v\n%q", err, screen.String())
	}
	out, _, err = cli("list", "--output", "text")
	if err != nil || !strings.HasPrefix(out, "STATUS") || !strings.Contains(out, "soup") {
		t.Fatalf("list --output text is a table: %v\n%s", err, out)
	}
	out, _, err = cli("list", "-o", "json", "--limit", "1")
	if err != nil || strings.Count(out, `"executionId"`) != 1 {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}
	if _, _, err := cli("list", "--output", "yaml"); err == nil || !strings.Contains(err.Error(), "json or text") {
		t.Fatalf("--output yaml: %v", err)
	}
	if out, _, err := cli("version"); err != nil || !strings.HasPrefix(out, "longrun ") {
		t.Fatalf("version: %v %q", err, out)
	}
	if _, _, err := cli("strat"); err == nil || !strings.Contains(err.Error(), `Did you mean "start"?`) {
		t.Fatalf("a mistyped command: %v", err)
	}
	if _, _, err := cli("keys", "craete"); err == nil || !strings.Contains(err.Error(), `Did you mean "create"?`) {
		t.Fatalf("a mistyped subcommand: %v", err)
	}
	// Ctrl-C ends the waiting, not the execution.
	long, err := s.Client.Start(context.Background(), client.StartRequest{Input: json.RawMessage(`{"seconds": 2}`)}, "")
	if err != nil {
		t.Fatal(err)
	}
	interrupted, cancel := context.WithCancel(context.Background())
	cancel()
	err = run(interrupted, []string{"longrun", "wait", long.ExecutionID}, env, nil, io.Discard, io.Discard)
	if ee, ok := err.(*exitError); !ok || ee.code != 130 || !strings.Contains(ee.msg, "goes on") {
		t.Fatalf("wait after Ctrl-C: %v, want exit status 130 saying the execution goes on", err)
	}
	if e, err := s.Client.Describe(context.Background(), long.ExecutionID); err != nil || e.Status != "RUNNING" {
		t.Fatalf("after Ctrl-C of wait the execution is %v, %v; want RUNNING", e, err)
	}
	if out, _, err := cli("completion", "bash"); err != nil || !strings.Contains(out, "complete") {
		t.Fatalf("completion bash: %v", err)
	}
	if _, _, err := cli("describe", "no-such-id"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("describe of an unknown id: %v", err)
	}
	noKey := run(context.Background(), []string{"longrun", "describe", "x"}, func(string) string { return "" }, nil, io.Discard, io.Discard)
	if noKey == nil || !strings.Contains(noKey.Error(), "LONGRUN_API_KEY") {
		t.Fatalf("a client command without a key must say how to get one: %v", noKey)
	}
}

func TestASLCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"longrun"}, args...), func(string) string { return "" }, nil, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	subs := []string{"--sub", "JobsQueueUrl=https://sqs.us-east-1.amazonaws.com/123456789012/jobs", "--sub", "NotifyFunctionArn=arn:aws:lambda:us-east-1:123456789012:function:notify"}
	def := repoFile(t, "statemachine/longrun.asl.json")

	if out, err := cli(append(append([]string{"asl", "validate"}, subs...), def)...); err != nil {
		t.Fatalf("validate the repo's definition: %v\n%s", err, out)
	}
	if _, err := cli("asl", "validate", def); err == nil || !strings.Contains(err.Error(), "JobsQueueUrl") {
		t.Fatalf("a missing substitution must be named: %v", err)
	}

	// A definition the template names takes the template's substitutions,
	// and the example mock beside it answers its tasks.
	tpl := repoFile(t, "template.yaml")
	if out, err := cli("asl", "validate", "--template", tpl, def); err != nil {
		t.Fatalf("validate with the template's substitutions: %v\n%s", err, out)
	}
	shipped := `{"executionId":"e1","executionArn":"arn:x","input":{},"limits":{"timeoutSeconds":60,"heartbeatSeconds":10}}`
	if out, err := cli("asl", "run", "--template", tpl, "--mock", repoFile(t, "statemachine/longrun.mock.json"), "--input", shipped, def); err != nil || !strings.Contains(out, "ramen is ready") {
		t.Fatalf("asl run with the shipped mock: %v\n%s", err, out)
	}

	bad := filepath.Join(dir, "bad.asl.json")
	os.WriteFile(bad, []byte(`{"StartAt":"A","States":{"A":{"Type":"Parallel","Branches":[],"End":true},"B":{"Type":"Pass","Next":"Nowhere"}}}`), 0o600)
	_, err := cli("asl", "validate", bad)
	ee, ok := err.(*exitError)
	if !ok || ee.code != 1 || !strings.Contains(ee.msg, `state "A"`) || !strings.Contains(ee.msg, `state "B"`) {
		t.Fatalf("validate must list every problem with its state: %v", err)
	}

	mock := filepath.Join(dir, "mock.json")
	os.WriteFile(mock, []byte(`{"Work": [{"Throw": {"Error": "SQS.AmazonSQSException", "Cause": "throttled"}}, {"Return": {"message": "done"}}], "Finalize": [{"Return": {"Payload": {}}}]}`), 0o600)
	input := `{"executionId":"e1","executionArn":"arn:aws:states:us-east-1:123456789012:execution:longrun:e1","input":{},"limits":{"timeoutSeconds":60,"heartbeatSeconds":10}}`
	out, err := cli(append(append([]string{"asl", "run"}, subs...), "--mock", mock, "--input", input, "--history", def)...)
	if err != nil {
		t.Fatalf("asl run: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; last != `{"message":"done"}` {
		t.Fatalf("last line of asl run is %q, want the output", last)
	}
	if !strings.Contains(out, "TaskFailed") && !strings.Contains(out, "TaskTimedOut") {
		t.Fatalf("--history shows the retried attempt:\n%s", out)
	}

	// Skipped waits advance a virtual clock: the execution's TimeoutSeconds
	// applies and --history shows the wait's length.
	slow := filepath.Join(dir, "slow.asl.json")
	os.WriteFile(slow, []byte(`{"TimeoutSeconds":30,"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":20,"Next":"W2"},"W2":{"Type":"Wait","Seconds":20,"End":true}}}`), 0o600)
	out, err = cli("asl", "run", "--history", slow)
	if ee, ok := err.(*exitError); !ok || !strings.Contains(ee.msg, "TIMED_OUT") {
		t.Fatalf("a run longer than TimeoutSeconds times out: %v\n%s", err, out)
	}
	var first, last asl.HistoryEvent
	hist := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(hist[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(hist[len(hist)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if d := last.Timestamp.Sub(first.Timestamp); last.Type != "ExecutionTimedOut" || d < 29900*time.Millisecond || d > 31*time.Second {
		t.Fatalf("the history ends with ExecutionTimedOut 30 s after the start, not %s after: %s", d, last.Type)
	}

	failMock := filepath.Join(dir, "fail.json")
	os.WriteFile(failMock, []byte(`{"Work": [{"Throw": {"Error": "Ramen.Failed", "Cause": "no water"}}], "FinalizeFailure": [{"Return": {"Payload": {}}}]}`), 0o600)
	_, err = cli(append(append([]string{"asl", "run"}, subs...), "--mock", failMock, "--input", input, def)...)
	if ee, ok := err.(*exitError); !ok || ee.code != 1 || !strings.Contains(ee.msg, "Ramen.Failed") || !strings.Contains(ee.msg, "no water") {
		t.Fatalf("a failed run exits non-zero with the error and cause: %v", err)
	}
}

func TestKeysCommands(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"longrun", "keys"}, args...), func(string) string { return "" }, nil, &out, io.Discard)
		return out.String(), err
	}
	out, err := cli("create", "--data-dir", data, "--tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ APIKey, Tenant, WebhookSecret string }
	if err := json.Unmarshal([]byte(out), &k); err != nil || !strings.HasPrefix(k.APIKey, "lr_") || k.Tenant != "acme" || !strings.HasPrefix(k.WebhookSecret, "whsec_") {
		t.Fatalf("keys create printed %q (%v)", out, err)
	}
	out, err = cli("rotate-secret", "--data-dir", data, "--tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		WebhookSecret  string
		SigningSecrets []string
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.SigningSecrets) != 2 || r.SigningSecrets[1] != k.WebhookSecret || r.WebhookSecret == k.WebhookSecret {
		t.Fatalf("rotate-secret printed %q (%v): want the new secret and both signing during the overlap", out, err)
	}
	if out, err := cli("revoke", "--data-dir", data, "--key", k.APIKey); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("keys revoke: %q, %v", out, err)
	}
	if _, err := cli("revoke", "--data-dir", data, "--key", k.APIKey); err == nil || !strings.Contains(err.Error(), "unknown API key") {
		t.Fatalf("revoking a revoked key: %v, want unknown API key", err)
	}
	if _, err := cli("rotate-secret", "--data-dir", data, "--tenant", "nobody"); err == nil {
		t.Fatal("rotating an unknown tenant's secret must fail")
	}
	if _, err := cli("create", "--data-dir", data); err == nil || !strings.Contains(err.Error(), "tenant") {
		t.Fatalf("keys create without --tenant: %v", err)
	}
}

func TestWebhookListenAndVerify(t *testing.T) {
	t.Parallel()
	// --save makes its directory.
	secret, saved := webhook.NewSecret(), filepath.Join(t.TempDir(), "webhooks", "saved")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"longrun", "webhook", "listen", "--addr", "127.0.0.1:0", "--secret", secret, "--save", saved, "--fail-first", "1"},
			func(string) string { return "" }, nil, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatal("webhook listen printed nothing")
	}
	addr := regexp.MustCompile(`http://\S+`).FindString(lines.Text())
	go func() {
		for lines.Scan() { // keep the receiver's output flowing
		}
	}()

	body := []byte(`{"type":"execution.succeeded","timestamp":"2026-11-25T08:00:00Z","data":{"executionId":"e1","status":"SUCCEEDED"}}`)
	send := func(secrets []string) int {
		req, _ := http.NewRequest(http.MethodPost, addr+"/hook", bytes.NewReader(body))
		if err := webhook.SetHeaders(req.Header, secrets, "msg_e1", time.Now(), body); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send([]string{webhook.NewSecret()}); code != http.StatusUnauthorized {
		t.Fatalf("a webhook signed with another secret got %d, want 401", code)
	}
	if code := send([]string{secret}); code != http.StatusServiceUnavailable {
		t.Fatalf("--fail-first 1: the first verified delivery got %d, want 503", code)
	}
	if code := send([]string{secret}); code != http.StatusNoContent {
		t.Fatalf("a verified delivery got %d, want 204", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	files, _ := filepath.Glob(filepath.Join(saved, "*.http"))
	if len(files) != 3 {
		t.Fatalf("saved %d requests, want 3", len(files))
	}
	verify := func(file string, extra ...string) error {
		args := append([]string{"longrun", "webhook", "verify", "--secret", secret}, extra...)
		return run(context.Background(), append(args, file), func(string) string { return "" }, nil, io.Discard, io.Discard)
	}
	slices.Sort(files)
	if err := verify(files[2]); err != nil {
		t.Fatalf("verify a saved delivery: %v", err)
	}
	if err := verify(files[0]); err == nil {
		t.Fatal("verify accepted a delivery signed with another secret")
	}
	raw, _ := os.ReadFile(files[2])
	tampered := filepath.Join(saved, "tampered.http")
	os.WriteFile(tampered, bytes.Replace(raw, []byte("SUCCEEDED"), []byte("FAILED\x20\x20\x20"), 1), 0o600)
	if err := verify(tampered); err == nil {
		t.Fatal("verify accepted a changed body")
	}
}
