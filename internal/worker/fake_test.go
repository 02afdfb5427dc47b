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
