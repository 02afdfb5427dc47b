package term_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/longrun/longrun/client"
	"github.com/longrun/longrun/internal/fakeclock"
	"github.com/longrun/longrun/internal/term"
)

// fakeAPI answers describe with the next of its records, each with
// Retry-After: 0 so the waiting takes no time; a nil record is a 429.
type fakeAPI struct {
	mu      sync.Mutex
	records []map[string]any
	polls   int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.polls, len(f.records)-1)
	f.polls++
	w.Header().Set("Retry-After", "0")
	if f.records[i] == nil {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"status":429,"title":"Too Many Requests","detail":"slow down"}`)
		return
	}
	_ = json.NewEncoder(w).Encode(f.records[i])
}

func record(status string, percent float64, msg string) map[string]any {
	r := map[string]any{"executionId": "ex-1", "status": status, "startDate": "2026-01-01T00:00:00Z", "input": map[string]any{}}
	if percent >= 0 {
		r["progress"] = map[string]any{"percent": percent, "message": msg, "updatedAt": "2026-01-01T00:00:01Z"}
	}
	return r
}

func setup(t *testing.T, records ...map[string]any) *client.Client {
	t.Helper()
	srv := httptest.NewServer(&fakeAPI{records: records})
	t.Cleanup(srv.Close)
	return client.New(srv.URL, "lr_test")
}

// tickingClock moves a second per reading: elapsed time is predictable.
type tickingClock struct{ *fakeclock.Clock }

func (c tickingClock) Now() time.Time {
	c.Advance(time.Second)
	return c.Clock.Now()
}

func ticking() tickingClock {
	return tickingClock{fakeclock.At(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
}

var journey = []map[string]any{
	record("RUNNING", -1, ""),
	nil, // throttled once: the wait goes on
	record("RUNNING", 33.333, "boiling water"),
	record("RUNNING", 99.7, "almost"),
	record("SUCCEEDED", 99.7, "almost"),
}

// Through a pipe: one plain line per change, no escape codes. The poll
// interval is an hour: only honouring Retry-After: 0 lets it end at once.
func TestWaitThroughAPipe(t *testing.T) {
	t.Parallel()
	c := setup(t, journey...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if term.IsTerminal(w) {
		t.Fatal("a pipe is not a terminal")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // Retry-After: 0 ends it at once
	defer cancel()
	e, err := term.Wait(ctx, c, "ex-1", term.WaitOptions{Live: term.IsTerminal(w), Out: w, Interval: time.Hour, Clock: ticking()})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != "SUCCEEDED" {
		t.Errorf("final status %s", e.Status)
	}
	out, _ := io.ReadAll(r)
	want := "ex-1  RUNNING  waiting for a worker  0%\n" +
		"ex-1  RUNNING  working  33%  boiling water\n" +
		"ex-1  RUNNING  working  99%  almost\n" +
		"ex-1  SUCCEEDED  99%  almost\n"
	if string(out) != want {
		t.Errorf("through a pipe:\n%q\nwant\n%q", out, want)
	}
}

// Through a pseudo-terminal: one line, redrawn in place with \r and
// erase-line, with a bar and rounded percent, ended by one newline.
func TestWaitThroughAPseudoTerminal(t *testing.T) {
	t.Parallel()
	c := setup(t, journey...)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	read := make(chan struct{})
	go func() { _, _ = io.Copy(&out, ptmx); close(read) }()
	if !term.IsTerminal(tty) {
		t.Fatal("the pty is not a terminal")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // Retry-After: 0 ends it at once
	defer cancel()
	e, err := term.Wait(ctx, c, "ex-1", term.WaitOptions{Live: term.IsTerminal(tty), Out: tty, Interval: time.Hour, Clock: ticking()})
	if err != nil {
		t.Fatal(err)
	}
	tty.Close()
	<-read
	got := out.String()
	if e.Status != "SUCCEEDED" {
		t.Errorf("final status %s", e.Status)
	}
	if n := strings.Count(got, "\n"); n != 1 || !strings.HasSuffix(strings.TrimRight(got, "\r\n"), "almost") {
		t.Errorf("want one line redrawn and one newline at the end, got %d newlines:\n%q", n, got)
	}
	draws := strings.Split(got, "\r\x1b[2K")[1:]
	if len(draws) < 4 {
		t.Fatalf("want a redraw per change, got %q", got)
	}
	for _, want := range []string{
		"RUNNING  waiting for a worker  [░░░░░░░░░░░░░░░░░░░░]    0%",
		"RUNNING  working  [██████░░░░░░░░░░░░░░]   33%",
		"boiling water",
		"✓  SUCCEEDED  [███████████████████░]   99%",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in %q", want, got)
		}
	}
	if strings.Contains(got, "100%") {
		t.Error("99.7% shown as 100% before the end")
	}
}

// Ctrl-C ends the wait, not the execution: the wait returns the context's
// error and leaves the terminal on a fresh line.
func TestWaitEndsOnCancel(t *testing.T) {
	t.Parallel()
	c := setup(t, record("RUNNING", 10, "slow"))
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error)
	go func() {
		_, err := term.Wait(ctx, c, "ex-1", term.WaitOptions{Live: true, Out: &syncBuffer{b: &out}, Interval: time.Hour})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestPercentIsRoundedForPeople(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   float64
		want int
	}{{-3, 0}, {0, 0}, {0.4, 0}, {33.333, 33}, {42.9, 42}, {99.7, 99}, {100, 100}, {250, 100}} {
		if got := term.Percent(tt.in); got != tt.want {
			t.Errorf("Percent(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestJSONOutput(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		flag    string
		want    bool
		wantErr bool
	}{{"json", true, false}, {"text", false, false}, {"", true, false}, {"yaml", false, true}} {
		got, err := term.JSONOutput(tt.flag, &bytes.Buffer{}) // not a terminal
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("JSONOutput(%q) = %v, %v", tt.flag, got, err)
		}
	}
}

func TestListTable(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stop := start.Add(90 * time.Second)
	var out bytes.Buffer
	err := term.List(&out, &client.Page{Executions: []client.Summary{
		{ExecutionID: "ex-2", Status: "RUNNING", Job: "ramen", Name: "soup", StartDate: start},
		{ExecutionID: "ex-1", Status: "SUCCEEDED", StartDate: start, StopDate: &stop},
	}, NextToken: "tok"}, start.Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "STATUS") || !strings.Contains(lines[0], "JOB") || !strings.Contains(lines[1], "ramen") || !strings.Contains(lines[1], "soup") ||
		!strings.Contains(lines[1], "5.0s") || !strings.Contains(lines[2], "1m30s") || lines[3] != "more: --next-token tok" {
		t.Errorf("table:\n%s", out.String())
	}
	// Columns line up.
	if strings.Index(lines[1], "ex-2") != strings.Index(lines[2], "ex-1") {
		t.Errorf("columns do not line up:\n%s", out.String())
	}
}

func TestErrorLineSaysLongrunOnce(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want string
	}{
		{errors.New("listen on x: address in use"), "longrun: listen on x: address in use"},
		{fmt.Errorf("create key: %w", errors.New("longrun: invalid: tenant \"\" is empty")), `longrun: create key: invalid: tenant "" is empty`},
	} {
		if got := term.ErrorLine(tt.err); got != tt.want {
			t.Errorf("ErrorLine = %q, want %q", got, tt.want)
		}
	}
}

// The live line shows the state the API names, and a phase from the record
// where it names none.
func TestStatusOfShowsTheCurrentState(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		e    client.Execution
		want string
	}{
		{client.Execution{Status: "RUNNING"}, "waiting for a worker"},
		{client.Execution{Status: "RUNNING", Progress: &client.Progress{Percent: 10}}, "working"},
		{client.Execution{Status: "RUNNING", State: "Resize"}, "Resize"},
		{client.Execution{Status: "SUCCEEDED", State: "Finalize"}, ""},
	} {
		if got := term.StatusOf(&tt.e).Phase; got != tt.want {
			t.Errorf("StatusOf(%+v).Phase = %q, want %q", tt.e, got, tt.want)
		}
	}
}
