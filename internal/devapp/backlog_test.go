package devapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
)

// A backlog never costs a job: one worker, a 1 s JobHeartbeatSeconds and
// eight jobs of 400 ms each, so the last waits over three heartbeats in the
// queue. Every job succeeds, runs exactly once, and no history has a task
// timed out (with Work's old HeartbeatSeconds, most timed out unrun and
// their stale copies still ran).
func TestBacklogLongerThanTheHeartbeat(t *testing.T) {
	t.Parallel()
	tpl := templateWithHeartbeat(t, 1)
	var (
		mu   sync.Mutex
		runs = map[string]int{}
	)
	job := func(ctx context.Context, in json.RawMessage, report func(longrun.Progress)) (json.RawMessage, error) {
		mu.Lock()
		runs[string(in)]++
		mu.Unlock()
		select { // the job's own work: 400 ms
		case <-time.After(400 * time.Millisecond):
			return json.RawMessage(`{"ok":true}`), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ctx := context.Background()
	app, url := serve(t, devapp.Config{TemplatePath: tpl, Workers: 1, Jobs: registryOf(job)})
	if app.Limits.HeartbeatSeconds != 1 {
		t.Fatalf("limits %+v, want the edited 1 s heartbeat", app.Limits)
	}
	c := newClient(t, url, keyFor(t, app, "acme"))

	const jobs = 8
	var ids []string
	for i := range jobs {
		ids = append(ids, c.startInput(t, map[string]int{"n": i}))
	}
	waitSucceeded(t, app, ids, 30*time.Second)
	for _, id := range ids {
		hist, err := app.Engine.History(ctx, app.Engine.ExecutionARN(id))
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range hist {
			if strings.Contains(ev.Type, "TimedOut") || strings.Contains(string(ev.Detail), "Timeout") {
				t.Errorf("%s: history has %s %s", id, ev.Type, ev.Detail)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != jobs {
		t.Errorf("%d distinct jobs ran, want %d: %v", len(runs), jobs, runs)
	}
	for in, n := range runs {
		if n != 1 {
			t.Errorf("job %s ran %d times, want once", in, n)
		}
	}
}

// templateWithHeartbeat is a copy of the template whose JobHeartbeatSeconds
// defaults to seconds.
func templateWithHeartbeat(t *testing.T, seconds int) string {
	t.Helper()
	return copyTemplate(t, func(b []byte) []byte {
		re := regexp.MustCompile(`(?m)(JobHeartbeatSeconds:\n(?:\s+\w+:.*\n)*?\s+Default:) \d+`)
		edited := re.ReplaceAll(b, []byte(fmt.Sprintf("$1 %d", seconds)))
		if string(edited) == string(b) {
			t.Fatal("template.yaml: no JobHeartbeatSeconds Default")
		}
		return edited
	})
}

// waitSucceeded waits, within d for them all, until each of ids has ended,
// and reports each that ended other than SUCCEEDED.
func waitSucceeded(t *testing.T, app *devapp.App, ids []string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, id := range ids {
		for {
			e, err := app.Executions.GetExecution(context.Background(), "", id)
			if err != nil {
				t.Fatal(err)
			}
			if e.Status != longrun.StatusRunning {
				if e.Status != longrun.StatusSucceeded {
					t.Errorf("%s ended %s (%s: %s), want SUCCEEDED", id, e.Status, e.Error, e.Cause)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still RUNNING after %s", id, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
