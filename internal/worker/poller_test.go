package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/fakeclock"
)

const visibility = 30 * time.Second

// gate is a job per message id that runs until released, counting how many
// run at once. A job with honourCtx false keeps running after cancellation
// until released, like a job that ignores ctx for a while.
type gate struct {
	mu      sync.Mutex
	release map[string]chan struct{}
	running int
	most    int
	started []string
}

func newGate(ids ...string) *gate {
	g := &gate{release: map[string]chan struct{}{}}
	for _, id := range ids {
		g.release[id] = make(chan struct{})
	}
	return g
}

func (g *gate) job(ctx context.Context, in json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
	var v struct{ ID string }
	_ = json.Unmarshal(in, &v)
	g.mu.Lock()
	g.running++
	g.most = max(g.most, g.running)
	g.started = append(g.started, v.ID)
	release := g.release[v.ID]
	g.mu.Unlock()
	defer func() { g.mu.Lock(); g.running--; g.mu.Unlock() }()
	select {
	case <-release:
		return json.RawMessage(`"done"`), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *gate) stats() (running, most int, started []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running, g.most, slices.Clone(g.started)
}

func taskBody(id string) string {
	return fmt.Sprintf(`{"taskToken":"tok-%s","executionArn":"arn:x:%s","executionId":"ex-%s","input":{"id":%q}}`, id, id, id, id)
}

func setupPoller(t *testing.T, concurrency int, ids ...string) (*Poller, *queue, *gate, *harness) {
	t.Helper()
	g := newGate(ids...)
	h := setup(t, g.job)
	var bodies []string
	for _, id := range ids {
		bodies = append(bodies, taskBody(id))
	}
	q := newQueue(bodies...)
	p := NewPoller(PollerConfig{
		Queue: q, Processor: h.p, Concurrency: concurrency, Visibility: visibility,
		DrainTimeout: time.Minute, Clock: h.clock,
	})
	return p, q, g, h
}

func run(p *Poller) (context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return cancel, done
}

func TestPollerConcurrencyAndVisibility(t *testing.T) {
	t.Parallel()
	p, q, g, h := setupPoller(t, 2, "a", "b", "c")
	cancel, done := run(p)
	defer cancel()

	eventually(t, "two jobs running", func() bool { r, _, _ := g.stats(); return r == 2 })
	// Each running job has a heartbeat, a progress and a visibility ticker.
	eventually(t, "tickers", func() bool { return h.clock.Waits() == 6 })
	h.clock.Advance(visibility / 3)
	eventually(t, "visibility extended", func() bool {
		_, v := q.state()
		return slices.Equal(v["r-a"], []time.Duration{visibility}) && slices.Equal(v["r-b"], []time.Duration{visibility})
	})

	close(g.release["a"])
	eventually(t, "a deleted and c started", func() bool {
		d, _ := q.state()
		_, _, started := g.stats()
		return slices.Equal(d, []string{"r-a"}) && len(started) == 3
	})
	close(g.release["b"])
	close(g.release["c"])
	eventually(t, "all deleted", func() bool { d, _ := q.state(); return len(d) == 3 })
	if _, most, _ := g.stats(); most != 2 {
		t.Fatalf("at most %d jobs ran at once, want 2", most)
	}
	if q.maxes[0] != 2 {
		t.Fatalf("first Receive asked for %d messages, want 2 (the free slots)", q.maxes[0])
	}
	successes, _, _ := h.rep.snapshot()
	if len(successes) != 3 {
		t.Fatalf("%d tasks completed, want 3", len(successes))
	}
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestPollerDrain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		finish      bool // the job finishes within the drain timeout
		wantDeleted []string
		wantRelease bool // the message is made visible again at once
	}{
		{name: "job finishes during the drain", finish: true, wantDeleted: []string{"r-a"}},
		{name: "drain timeout cancels the job", finish: false, wantRelease: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, q, g, h := setupPoller(t, 1, "a")
			cancel, done := run(p)
			eventually(t, "job running", func() bool { r, _, _ := g.stats(); return r == 1 })

			cancel() // SIGTERM
			eventually(t, "drain timer", func() bool { return slices.Contains(h.clock.Pending(), fakeclock.Start.Add(time.Minute)) })
			select {
			case err := <-done:
				t.Fatalf("Run returned %v with a job still running", err)
			default:
			}
			if tt.finish {
				close(g.release["a"])
			} else {
				h.clock.Advance(time.Minute)
			}
			if err := wait(t, done); err != nil {
				t.Fatalf("Run = %v", err)
			}
			deleted, vis := q.state()
			// Extensions may run during the drain; a release must come last.
			released := len(vis["r-a"]) > 0 && vis["r-a"][len(vis["r-a"])-1] == 0
			if !slices.Equal(deleted, tt.wantDeleted) || released != tt.wantRelease {
				t.Fatalf("deleted %v, visibility changes %v; want deleted %v, released %v", deleted, vis["r-a"], tt.wantDeleted, tt.wantRelease)
			}
			successes, failures, _ := h.rep.snapshot()
			if tt.finish != (len(successes) == 1) || len(failures) != 0 {
				t.Fatalf("completions %v %v", successes, failures)
			}
			if len(q.maxes) != 1 {
				t.Fatalf("%d receives; none may follow the SIGTERM", len(q.maxes))
			}
		})
	}
}

// TestPollerReadsEveryQueue: `longrun worker` reads the jobs queue and the
// long-jobs queue, each with its own slots, so a job running from one
// never keeps the other's jobs waiting.
func TestPollerReadsEveryQueue(t *testing.T) {
	t.Parallel()
	g := newGate("short", "long")
	h := setup(t, g.job)
	jobs, long := newQueue(taskBody("short")), newQueue(taskBody("long"))
	p := NewPoller(PollerConfig{
		Queue: jobs, Queues: []longrun.Queue{long}, Processor: h.p, Concurrency: 1, Visibility: visibility,
		DrainTimeout: time.Minute, Clock: h.clock,
	})
	cancel, done := run(p)
	defer cancel()
	eventually(t, "a job from each queue running at once", func() bool { r, _, _ := g.stats(); return r == 2 })
	close(g.release["short"])
	close(g.release["long"])
	eventually(t, "each message deleted from its own queue", func() bool {
		dj, _ := jobs.state()
		dl, _ := long.state()
		return slices.Equal(dj, []string{"r-a"}) && slices.Equal(dl, []string{"r-a"})
	})
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
