package devapp_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/jobs/noop"
)

// receiver records the webhooks it receives, by execution id. While hold
// is set, it answers only once hold is closed.
type receiver struct {
	mu    sync.Mutex
	types map[string][]string
	hold  chan struct{}
}

func newReceiver(t *testing.T) (*receiver, string) {
	r := &receiver{types: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		hold := r.hold
		r.mu.Unlock()
		if hold != nil {
			<-hold
		}
		body, _ := io.ReadAll(req.Body)
		var ev struct {
			Type string
			Data struct{ ExecutionID string }
		}
		_ = json.Unmarshal(body, &ev)
		r.mu.Lock()
		r.types[ev.Data.ExecutionID] = append(r.types[ev.Data.ExecutionID], ev.Type)
		r.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *receiver) got(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.types[id]...)
}

func startWithCallback(t *testing.T, c *client, callback string) string {
	t.Helper()
	code, out, _ := c.do(t, http.MethodPost, "/start-execution", map[string]any{"input": map[string]any{}, "callbackUrl": callback})
	if code != http.StatusAccepted {
		t.Fatalf("start: %d %s", code, out)
	}
	var e struct{ ExecutionID string }
	_ = json.Unmarshal(out, &e)
	return e.ExecutionID
}

// waitDelivered waits until the execution's webhook is delivered.
func waitDelivered(t *testing.T, app *devapp.App, id string) *longrun.Execution {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err := app.Executions.GetExecution(context.Background(), "", id)
		if err == nil && e.Webhook != nil && e.Webhook.State == longrun.DeliveryDelivered {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook of %s not delivered after 10s: %+v %v", id, e, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// 50 concurrent redelivers of one execution start exactly one round: one
// 202, the others 409, one more webhook.
func TestConcurrentRedeliversStartOneRound(t *testing.T) {
	t.Parallel()
	recv, url := newReceiver(t)
	app, api := serve(t, devapp.Config{Jobs: registryOf(noop.Job), AllowLoopbackWebhooks: true, WebhookSchedule: "1s"})
	c := newClient(t, api, keyFor(t, app, "acme"))
	id := startWithCallback(t, c, url)
	waitDelivered(t, app, id)
	waitIdle(t, app)

	rounds := count(t, app, `SELECT count(*) FROM local_executions WHERE machine = 'DeliverStateMachine'`)
	// The redelivery round stays in progress while the requests race.
	hold := make(chan struct{})
	recv.mu.Lock()
	recv.hold = hold
	recv.mu.Unlock()
	codes := make([]int, 50)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() { codes[i], _, _ = c.do(t, http.MethodPost, "/executions/"+id+"/redeliver", nil) })
	}
	wg.Wait()
	close(hold)
	accepted, conflicts := 0, 0
	for _, code := range codes {
		switch code {
		case http.StatusAccepted:
			accepted++
		case http.StatusConflict:
			conflicts++
		}
	}
	if accepted != 1 || conflicts != 49 {
		t.Fatalf("50 concurrent redelivers: %d × 202 and %d × 409, want 1 and 49", accepted, conflicts)
	}
	waitDelivered(t, app, id)
	waitIdle(t, app)
	if got := recv.got(id); len(got) != 2 {
		t.Errorf("%d webhooks received (%v), want 2: the first and one redelivery", len(got), got)
	}
	if n := count(t, app, `SELECT count(*) FROM local_executions WHERE machine = 'DeliverStateMachine'`); n != rounds+1 {
		t.Errorf("%d delivery loops ran after the redelivers, want 1", n-rounds)
	}
}

// Stops racing completions: whatever the stop answers, describe, the
// engine's history and the webhook tell the same outcome.
func TestStopRacingCompletionAgrees(t *testing.T) {
	t.Parallel()
	recv, url := newReceiver(t)
	app, api := serve(t, devapp.Config{Jobs: registryOf(noop.Job), AllowLoopbackWebhooks: true, WebhookSchedule: "1s", Workers: 16})
	c := newClient(t, api, keyFor(t, app, "acme"))
	const n = 120
	ids := make([]string, n)
	stops := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ids[i] = startWithCallback(t, c, url)
			time.Sleep(time.Duration(i%40) * time.Millisecond) // spread the stops over the job's short life
			stops[i], _, _ = c.do(t, http.MethodDelete, "/executions/"+ids[i], nil)
		})
	}
	wg.Wait()
	waitIdle(t, app)
	outcomes := map[int]int{}
	for i, id := range ids {
		e := waitDelivered(t, app, id)
		want := map[int]longrun.Status{http.StatusOK: longrun.StatusAborted, http.StatusConflict: longrun.StatusSucceeded}[stops[i]]
		if want == "" {
			t.Fatalf("stop of %s answered %d", id, stops[i])
		}
		outcomes[stops[i]]++
		if e.Status != want {
			t.Errorf("%s: stop answered %d, describe says %s", id, stops[i], e.Status)
		}
		var events string
		if err := app.DB.Read(context.Background(), func(tx *sql.Tx) error {
			return tx.QueryRow(`SELECT events FROM local_history WHERE arn = ? ORDER BY first DESC LIMIT 1`, e.ARN).Scan(&events)
		}); err != nil {
			t.Fatal(err)
		}
		wantEvent := map[longrun.Status]string{longrun.StatusAborted: "ExecutionAborted", longrun.StatusSucceeded: "ExecutionSucceeded"}[want]
		if !strings.Contains(events, `"`+wantEvent+`"`) {
			t.Errorf("%s: stop answered %d, describe says %s, the history ends %s", id, stops[i], e.Status, events)
		}
		for _, typ := range recv.got(id) {
			if typ != string(longrun.EventTypeFor(want)) {
				t.Errorf("%s: stop answered %d, describe says %s, a webhook says %s", id, stops[i], e.Status, typ)
			}
		}
	}
	t.Logf("%d stops: %d stopped, %d came after the completion", n, outcomes[http.StatusOK], outcomes[http.StatusConflict])
}
