package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/asl"
	"github.com/longrun/longrun/internal/fakeclock"
	"github.com/longrun/longrun/internal/sqlite"
)

const (
	testQueueURL  = "http://localhost:4566/000000000000/jobs"
	testNotifyARN = "arn:aws:lambda:us-east-1:000000000000:function:notify"
	testRegionARN = "arn:aws:states:us-east-1:000000000000:stateMachine:"
)

var _ TxQueue = (*sqlite.Queue)(nil)

type fakeClock = fakeclock.Clock

func newFakeClock() *fakeClock { return fakeclock.New() }

// recorder is an in-process Lambda function that records its payloads and
// answers with answer (nil: {}); fail makes the next calls fail; block, if
// set, holds every call until it is closed.
type recorder struct {
	mu      sync.Mutex
	calls   []json.RawMessage
	fail    int
	block   chan struct{}
	calling chan struct{} // if set, gets a value when a call starts
	answer  func(payload json.RawMessage) (json.RawMessage, error)
	ended   atomic.Int32 // calls that have returned
}

func (r *recorder) fn(ctx context.Context, payload json.RawMessage) (json.RawMessage, error) {
	defer r.ended.Add(1)
	r.mu.Lock()
	block, calling := r.block, r.calling
	r.mu.Unlock()
	if calling != nil {
		select {
		case calling <- struct{}{}:
		default:
		}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, payload)
	if r.fail > 0 {
		r.fail--
		return nil, errors.New("notify is down")
	}
	if r.answer != nil {
		return r.answer(payload)
	}
	return json.RawMessage(`{}`), nil
}

func (r *recorder) set(fn func(r *recorder)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r)
}

func (r *recorder) payloads() []json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// fixture is an engine on a temporary SQLite file with a fake clock, the
// real state machines, the local jobs queue and recording functions.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	path   string
	clock  *fakeClock
	notify *recorder
	events *recorder
	echo   *recorder
	plain  bool // send through Queue.Send after commit instead of SendTx
	logger *slog.Logger
	wrap   func(*sqlite.DB) DB // if set, the engine's DB: the file's, wrapped

	db    *sqlite.DB
	queue *sqlite.Queue
	e     *Engine
	stop  context.CancelFunc
	done  chan error
}

type option func(*fixture)

// withLogger logs the engine's lines to l.
func withLogger(l *slog.Logger) option { return func(f *fixture) { f.logger = l } }

// withPlainQueue hides SendTx, so the engine sends after commit.
func withPlainQueue() option { return func(f *fixture) { f.plain = true } }

func setup(t *testing.T, opts ...option) *fixture {
	t.Helper()
	f := &fixture{
		t: t, ctx: t.Context(), path: filepath.Join(t.TempDir(), "longrun.db"), clock: newFakeClock(),
		notify: &recorder{}, events: &recorder{}, echo: &recorder{},
	}
	f.echo.answer = func(p json.RawMessage) (json.RawMessage, error) { return p, nil }
	f.notify.answer = func(p json.RawMessage) (json.RawMessage, error) {
		var req longrun.NotifyRequest
		if err := json.Unmarshal(p, &req); err != nil {
			return nil, err
		}
		if req.Action == longrun.NotifyDeliver {
			return json.RawMessage(`{"done":true,"retryAt":""}`), nil
		}
		return json.RawMessage(`{}`), nil
	}
	for _, o := range opts {
		o(f)
	}
	f.open()
	return f
}

// plainQueue is a longrun.Queue without SendTx.
type plainQueue struct{ longrun.Queue }

func loadDefinition(path string) ([]byte, error) {
	def, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return asl.Substitute(def, map[string]string{"JobsQueueUrl": testQueueURL, "NotifyFunctionArn": testNotifyARN})
}

func readDefinition(t testing.TB, path string) []byte {
	t.Helper()
	def, err := loadDefinition(path)
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// engineConfig is the tests' Config: the real machines and the fixtures,
// the jobs queue, and status-change events of failures to "events".
func engineConfig(db *sqlite.DB, queue longrun.Queue, fns map[string]Function) (Config, error) {
	paths := map[string]string{
		"longrun": "../../statemachine/longrun.asl.json", "deliver": "../../statemachine/deliver.asl.json",
		"flow": "testdata/flow.asl.json", "timeout": "testdata/timeout.asl.json", "lambda": "testdata/lambda.asl.json",
		"send": "testdata/send.asl.json", "fanout": "testdata/fanout.asl.json",
		"nopmap": "testdata/nopmap.asl.json", "retrymap": "testdata/retrymap.asl.json",
		"heartbeat": "testdata/heartbeat.asl.json",
	}
	var machines []Machine
	for _, name := range []string{"longrun", "deliver", "flow", "timeout", "lambda", "send", "fanout", "nopmap", "retrymap", "heartbeat"} {
		def, err := loadDefinition(paths[name])
		if err != nil {
			return Config{}, err
		}
		machines = append(machines, Machine{Name: name, ARN: testRegionARN + name, Definition: def})
	}
	return Config{
		DB: db, Clock: db.Clock, Rand: rand.New(rand.NewPCG(1, 2)),
		Machines: machines, Main: "longrun", Deliver: "deliver",
		Functions: fns,
		Queues:    map[string]longrun.Queue{testQueueURL: queue},
		StatusRules: []StatusRule{
			{Machine: "longrun", Statuses: []longrun.Status{longrun.StatusFailed, longrun.StatusTimedOut, longrun.StatusAborted}, Function: "events"},
			{Machine: "timeout", Statuses: []longrun.Status{longrun.StatusTimedOut}, Function: "events"},
			{Machine: "heartbeat", Statuses: []longrun.Status{longrun.StatusFailed, longrun.StatusTimedOut, longrun.StatusAborted}, Function: "events"},
		},
	}, nil
}

func testConfig(t testing.TB, db *sqlite.DB, queue longrun.Queue, fns map[string]Function) Config {
	t.Helper()
	cfg, err := engineConfig(db, queue, fns)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// open starts an engine on the fixture's file, as a new process would.
func (f *fixture) open() {
	t := f.t
	db, err := sqlite.Open(f.ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	db.Clock = f.clock
	t.Cleanup(func() { db.Close() })
	f.db = db
	f.queue = sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	var q longrun.Queue = f.queue
	if f.plain {
		q = plainQueue{f.queue}
	}
	cfg := testConfig(t, db, q, map[string]Function{"notify": f.notify.fn, "events": f.events.fn, "echo": f.echo.fn})
	cfg.Logger = f.logger
	if f.wrap != nil {
		cfg.DB = f.wrap(db)
	}
	e, err := New(f.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.e = e
	ctx, stop := context.WithCancel(f.ctx)
	f.stop, f.done = stop, make(chan error, 1)
	go func() { f.done <- e.Run(ctx) }()
	t.Cleanup(f.halt)
	select {
	case <-e.started:
	case err := <-f.done:
		t.Fatalf("Run: %v", err)
	}
}

// halt stops the engine's goroutine without any cleanup of its state.
func (f *fixture) halt() {
	f.stop()
	if err := <-f.done; err != nil {
		f.t.Errorf("Run: %v", err)
	}
	f.done <- nil // so a second halt returns at once
}

// crash drops the engine and everything it had in memory, and starts a new
// one on the same file, as after kill -9 and a restart. The old DB is left
// open, as a killed process leaves its WAL unmerged.
func (f *fixture) crash() {
	f.halt()
	f.open()
}

// sync returns once the engine has applied every timer due now: a command
// is applied in the same batch as the timers due when it is taken, or after
// them. (An unknown token makes a command that changes nothing.)
func (f *fixture) sync() {
	f.t.Helper()
	if err := f.e.SendTaskHeartbeat(f.ctx, "sync"); !longrun.IsCode(err, longrun.ETASKGONE) {
		f.t.Fatalf("sync: %v", err)
	}
}

// waitFor waits until cond holds, checking after every commit.
func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	limit := time.After(10 * time.Second)
	for {
		changed := f.e.committed()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-time.After(5 * time.Millisecond): // effects outside the engine (queue sends, functions)
		case <-limit:
			f.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (f *fixture) describe(arn string) *Description {
	f.t.Helper()
	d, err := f.e.Describe(f.ctx, arn)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) waitState(arn, state string) {
	f.t.Helper()
	f.waitFor(arn+" in "+state, func() bool {
		d := f.describe(arn)
		return d.Status == longrun.StatusRunning && d.State == state
	})
}

func (f *fixture) waitEnd(arn string) *Description {
	f.t.Helper()
	var d *Description
	f.waitFor(arn+" to end", func() bool {
		d = f.describe(arn)
		return d.Status.Terminal()
	})
	return d
}

// startJob starts the real longrun machine as the API does, on the jobs
// queue, with the Work state timing out at limits.TimeoutSeconds (these
// tests drive the worker's side themselves).
func (f *fixture) startJob(id string, input string, limits longrun.Limits) string {
	f.t.Helper()
	in := longrun.StateInput{ExecutionID: id, ExecutionARN: f.e.ExecutionARN(id), Input: json.RawMessage(input), Limits: limits,
		BackstopSeconds: limits.TimeoutSeconds, QueueURL: testQueueURL}
	if err := f.e.StartExecution(f.ctx, in); err != nil {
		f.t.Fatal(err)
	}
	return in.ExecutionARN
}

// startHeartbeatJob starts testdata/heartbeat.asl.json, the job definition
// with a Work-state HeartbeatSeconds, to test the engine's heartbeats.
func (f *fixture) startHeartbeatJob(id string, input string, limits longrun.Limits) string {
	f.t.Helper()
	in, err := json.Marshal(longrun.StateInput{ExecutionID: id, ExecutionARN: "arn:test:" + id, Input: json.RawMessage(input), Limits: limits})
	if err != nil {
		f.t.Fatal(err)
	}
	arn, err := f.e.Start(f.ctx, "heartbeat", id, in)
	if err != nil {
		f.t.Fatal(err)
	}
	return arn
}

// takeTask receives the next task message from the jobs queue.
func (f *fixture) takeTask() (longrun.TaskMessage, longrun.Message) {
	f.t.Helper()
	var msgs []longrun.Message
	f.waitFor("a task message", func() bool {
		var err error
		msgs, err = f.queue.Receive(f.ctx, 1, 0, time.Hour)
		if err != nil {
			f.t.Fatal(err)
		}
		return len(msgs) > 0
	})
	var tm longrun.TaskMessage
	if err := json.Unmarshal([]byte(msgs[0].Body), &tm); err != nil {
		f.t.Fatalf("task message %s: %v", msgs[0].Body, err)
	}
	if err := f.queue.Delete(f.ctx, msgs[0].Receipt); err != nil {
		f.t.Fatal(err)
	}
	return tm, msgs[0]
}

// queued counts the messages in the jobs queue, visible or not.
func (f *fixture) queued() int {
	f.t.Helper()
	var n int
	if err := f.db.Read(f.ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(f.ctx, `SELECT count(*) FROM queue_messages WHERE queue = 'jobs'`).Scan(&n)
	}); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func historyTypes(t *testing.T, e *Engine, arn string) []string {
	t.Helper()
	h, err := e.History(t.Context(), arn)
	if err != nil {
		t.Fatal(err)
	}
	types := make([]string, len(h))
	for i, ev := range h {
		types[i] = ev.Type
		if ev.State != "" {
			types[i] += ":" + ev.State
		}
	}
	return types
}
