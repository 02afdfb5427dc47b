package worker

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	longrun "github.com/longrun/longrun"
)

// fakeClock is a manual clock: time moves only by advance, which fires due
// tickers and timers as the real ones would (a ticker drops ticks its reader
// has not taken).
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
	timers  []*fakeTimer
}

type fakeTicker struct {
	c       chan time.Time
	period  time.Duration
	next    time.Time
	stopped bool
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }
func (t *fakeTicker) Stop()               { t.stopped = true } // guarded by the clock's lock in advance

type fakeTimer struct {
	c  chan time.Time
	at time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTicker(d time.Duration) Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTicker{c: make(chan time.Time, 1), period: d, next: c.now.Add(d)}
	c.tickers = append(c.tickers, t)
	return &lockedTicker{t: t, mu: &c.mu}
}

// lockedTicker stops its ticker under the clock's lock.
type lockedTicker struct {
	t  *fakeTicker
	mu *sync.Mutex
}

func (l *lockedTicker) C() <-chan time.Time { return l.t.c }
func (l *lockedTicker) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Stop()
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: c.now.Add(d)}
	c.timers = append(c.timers, t)
	return t.c
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.tickers {
		for !t.stopped && !t.next.After(c.now) {
			select {
			case t.c <- t.next:
			default:
			}
			t.next = t.next.Add(t.period)
		}
	}
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if t.at.After(c.now) {
			return false
		}
		t.c <- t.at
		return true
	})
}

// active returns how many tickers run and timers wait.
func (c *fakeClock) active() (tickers, timers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tickers {
		if !t.stopped {
			tickers++
		}
	}
	return tickers, len(c.timers)
}

// eventually waits (in real time, briefly) for cond: the goroutines under
// test react to fake time asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// reporter is a TaskReporter recording calls; the err funcs decide answers.
type reporter struct {
	mu           sync.Mutex
	successes    []sent
	failures     []sent
	heartbeats   int
	successErr   func(n int) error // n counts calls from 1
	failureErr   func(n int) error
	heartbeatErr func(n int) error
}

type sent struct {
	token, output, name, cause string
}

func (r *reporter) SendTaskSuccess(_ context.Context, token string, output json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.successes = append(r.successes, sent{token: token, output: string(output)})
	if r.successErr != nil {
		return r.successErr(len(r.successes))
	}
	return nil
}

func (r *reporter) SendTaskFailure(_ context.Context, token, name, cause string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, sent{token: token, name: name, cause: cause})
	if r.failureErr != nil {
		return r.failureErr(len(r.failures))
	}
	return nil
}

func (r *reporter) SendTaskHeartbeat(context.Context, string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heartbeats++
	if r.heartbeatErr != nil {
		return r.heartbeatErr(r.heartbeats)
	}
	return nil
}

func (r *reporter) snapshot() (successes, failures []sent, heartbeats int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.successes), slices.Clone(r.failures), r.heartbeats
}

// progressStore is the part of ExecutionStore the worker uses: SetProgress.
type progressStore struct {
	longrun.ExecutionStore // nil: any other call panics
	mu                     sync.Mutex
	progress               []longrun.Progress
}

func (s *progressStore) SetProgress(_ context.Context, _ string, p longrun.Progress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progress = append(s.progress, p)
	return nil
}

func (s *progressStore) saved() []longrun.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.progress)
}

// queue is an in-memory longrun.Queue.
type queue struct {
	mu         sync.Mutex
	pending    []longrun.Message
	deleted    []string
	visibility map[string][]time.Duration // receipt → ChangeVisibility calls
	maxes      []int                      // the max of each Receive
	arrived    chan struct{}
}

func newQueue(bodies ...string) *queue {
	q := &queue{visibility: map[string][]time.Duration{}, arrived: make(chan struct{}, 1)}
	for i, b := range bodies {
		id := string(rune('a' + i))
		q.pending = append(q.pending, longrun.Message{ID: id, Body: b, Receipt: "r-" + id, ReceiveCount: 1})
	}
	return q
}

func (q *queue) Send(context.Context, string) error { return nil }

func (q *queue) Receive(ctx context.Context, max int, _, _ time.Duration) ([]longrun.Message, error) {
	q.mu.Lock()
	q.maxes = append(q.maxes, max)
	n := min(max, len(q.pending))
	msgs := slices.Clone(q.pending[:n])
	q.pending = q.pending[n:]
	q.mu.Unlock()
	if len(msgs) > 0 {
		return msgs, nil
	}
	select { // a long poll: wait for ctx (no message will arrive)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-q.arrived:
		return nil, nil
	}
}

func (q *queue) Delete(_ context.Context, receipt string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deleted = append(q.deleted, receipt)
	return nil
}

func (q *queue) ChangeVisibility(_ context.Context, receipt string, d time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.visibility[receipt] = append(q.visibility[receipt], d)
	return nil
}

func (q *queue) state() (deleted []string, visibility map[string][]time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	v := map[string][]time.Duration{}
	for k, ds := range q.visibility {
		v[k] = slices.Clone(ds)
	}
	return slices.Clone(q.deleted), v
}

// wait returns what done yields, failing the test if that takes long: a bug
// must fail the test, not hang it.
func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for the call to return")
		return nil
	}
}
