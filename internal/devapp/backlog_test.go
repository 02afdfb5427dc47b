package devapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/tenant"
)

// A backlog never costs a job: one worker, a 1 s JobHeartbeatSeconds and
// eight jobs of 400 ms each, so the last waits over three heartbeats in the
// queue. Every job succeeds, runs exactly once, and no history has a task
// timed out (with Work's old HeartbeatSeconds, most timed out unrun and
// their stale copies still ran).
func TestBacklogLongerThanTheHeartbeat(t *testing.T) {
	t.Parallel()
	tpl := copyTemplate(t, func(b []byte) []byte {
		re := regexp.MustCompile(`(?m)(JobHeartbeatSeconds:\n(?:\s+\w+:.*\n)*?\s+Default:) \d+`)
		fast := re.ReplaceAll(b, []byte("$1 1"))
		if string(fast) == string(b) {
			t.Fatal("template.yaml: no JobHeartbeatSeconds Default")
		}
		return fast
	})
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app, err := devapp.Open(ctx, devapp.Config{DataDir: t.TempDir(), TemplatePath: tpl, Workers: 1, Jobs: registryOf(job)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if app.Limits.HeartbeatSeconds != 1 {
		t.Fatalf("limits %+v, want the edited 1 s heartbeat", app.Limits)
	}
	key, err := tenant.CreateKey(ctx, app.Tenants, "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()

	const jobs = 8
	var ids []string
	for i := range jobs {
		body := fmt.Sprintf(`{"input":{"n":%d}}`, i)
		req := httptest.NewRequest(http.MethodPost, "/start-execution", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key.APIKey)
		w := httptest.NewRecorder()
		app.Handler.ServeHTTP(w, req)
		var out struct{ ExecutionID string }
		if w.Code != http.StatusAccepted || json.Unmarshal(w.Body.Bytes(), &out) != nil {
			t.Fatalf("start %d: %d %s", i, w.Code, w.Body)
		}
		ids = append(ids, out.ExecutionID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			e, err := app.Executions.GetExecution(ctx, "", id)
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
				t.Fatalf("%s still RUNNING after 30 s", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
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
