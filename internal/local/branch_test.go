package local

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun"
)

// fanoutTask is the message fanout.asl.json's Map sends per item.
type fanoutTask struct {
	Token string `json:"token"`
	Index int    `json:"index"`
	Label string `json:"label"`
}

func (f *fixture) takeFanout() fanoutTask {
	f.t.Helper()
	var msgs []longrun.Message
	f.waitFor("a fanout task", func() bool {
		var err error
		if msgs, err = f.queue.Receive(f.ctx, 1, 0, time.Hour); err != nil {
			f.t.Fatal(err)
		}
		return len(msgs) > 0
	})
	var task fanoutTask
	if err := json.Unmarshal([]byte(msgs[0].Body), &task); err != nil {
		f.t.Fatalf("task message %s: %v", msgs[0].Body, err)
	}
	if err := f.queue.Delete(f.ctx, msgs[0].Receipt); err != nil {
		f.t.Fatal(err)
	}
	return task
}

// TestMapSurvivesCrash runs a Map of 100 items, each a task answered by
// token, at most 10 at once, and drops the engine (as kill -9 does) when
// half are done: after the restart the other half run, each item's task is
// sent exactly once, and the results are in item order.
func TestMapSurvivesCrash(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const n = 100
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("%q", fmt.Sprint("i", i))
	}
	input := `{"prefix":"p-","items":[` + strings.Join(items, ",") + `]}`
	arn, err := f.e.Start(f.ctx, "fanout", "fan-1", json.RawMessage(input))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	answer := func(task fanoutTask) {
		t.Helper()
		seen[task.Index]++
		if want := fmt.Sprint("p-i", task.Index); task.Label != want {
			t.Errorf("item %d has label %q, want %q (ItemSelector, variables, intrinsic)", task.Index, task.Label, want)
		}
		if err := f.e.SendTaskSuccess(f.ctx, task.Token, json.RawMessage(fmt.Sprintf(`{"done":%d}`, task.Index))); err != nil {
			t.Fatalf("item %d: %v", task.Index, err)
		}
	}
	for range n / 2 {
		answer(f.takeFanout())
	}
	if q := f.queued(); q > 10 {
		t.Fatalf("%d task messages at once; MaxConcurrency is 10", q)
	}
	f.crash()
	for range n / 2 {
		answer(f.takeFanout())
	}
	d := f.waitEnd(arn)
	if d.Status != longrun.StatusSucceeded {
		t.Fatalf("status %s: %s: %s", d.Status, d.Error, d.Cause)
	}
	for i := range n {
		if seen[i] != 1 {
			t.Errorf("item %d ran %d times", i, seen[i])
		}
	}
	if q := f.queued(); q != 0 {
		t.Errorf("%d task messages left over", q)
	}
	var out struct {
		Count  int    `json:"count"`
		Echoed string `json:"echoed"`
	}
	if err := json.Unmarshal(d.Output, &out); err != nil || out.Count != n || out.Echoed != "p-" {
		t.Fatalf("output %s: want the Parallel's count %d and the echoed variable", d.Output, n)
	}
	types := historyTypes(t, f.e, arn)
	count := map[string]int{}
	for _, ty := range types {
		count[ty]++
	}
	if count["MapIterationSucceeded:Each"] != n || count["TaskSucceeded:Work"] != n || count["ParallelStateSucceeded:Both"] != 1 {
		t.Errorf("history counts %v", count)
	}
}

// TestParallelBranchFailureIsCaught: a failing branch stops its siblings
// and the Parallel state's error goes through asl's Retry/Catch.
func TestBranchFailureEndsTheExecution(t *testing.T) {
	t.Parallel()
	f := setup(t)
	arn, err := f.e.Start(f.ctx, "fanout", "fan-2", json.RawMessage(`{"prefix":"x","items":["a","b","c"]}`))
	if err != nil {
		t.Fatal(err)
	}
	task := f.takeFanout()
	if err := f.e.SendTaskFailure(f.ctx, task.Token, "Item.Failed", "bad item"); err != nil {
		t.Fatal(err)
	}
	d := f.waitEnd(arn)
	if d.Status != longrun.StatusFailed || d.Error != "Item.Failed" {
		t.Fatalf("status %s %s, want FAILED Item.Failed", d.Status, d.Error)
	}
	// The other items' children were stopped: their tokens are gone.
	for range 2 {
		other := f.takeFanout()
		if err := f.e.SendTaskSuccess(f.ctx, other.Token, json.RawMessage(`{}`)); !longrun.IsCode(err, longrun.ETASKGONE) {
			t.Errorf("a stopped item's token: %v, want ETASKGONE", err)
		}
	}
}

// TestMapRetryRunsEveryItemAgain: an iteration fails, the Map's Retry waits
// its backoff (a durable timer, across a crash) and runs all the items again.
func TestMapRetryRunsEveryItemAgain(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.echo.set(func(r *recorder) { r.fail = 1 })
	arn, err := f.e.Start(f.ctx, "retrymap", "retry-1", json.RawMessage(`{"items":[1,2]}`))
	if err != nil {
		t.Fatal(err)
	}
	f.waitEvents(arn, "MapStateFailed:Each", 1)
	f.crash()
	f.clock.Advance(3 * time.Second)
	d := f.waitEnd(arn)
	if d.Status != longrun.StatusSucceeded || string(d.Output) != `[{"v":1},{"v":2}]` {
		t.Fatalf("status %s output %s (%s %s)", d.Status, d.Output, d.Error, d.Cause)
	}
	if calls := len(f.echo.payloads()); calls != 3 {
		t.Errorf("%d calls, want 3: the failed first item, then both items again", calls)
	}
}
