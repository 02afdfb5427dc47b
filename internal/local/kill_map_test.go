package local

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
)

// hostMapEnv makes the engine host run one Map of killMapItems items
// (testdata/fanout.asl.json) instead of killJobs jobs.
const hostMapEnv = "LONGRUN_LOCAL_ENGINE_HOST_MAP"

const killMapItems = 100

// workFanout answers fanout.asl.json's item tasks, printing a line per
// answer the engine accepted.
func (k *killEngine) workFanout(ctx context.Context, answered func(int)) {
	for ctx.Err() == nil {
		msgs, err := k.queue.Receive(ctx, 10, 100*time.Millisecond, time.Second)
		if err != nil {
			continue
		}
		for _, m := range msgs {
			var task fanoutTask
			if err := json.Unmarshal([]byte(m.Body), &task); err != nil {
				continue
			}
			time.Sleep(time.Millisecond) // the job
			err := k.e.SendTaskSuccess(ctx, task.Token, json.RawMessage(fmt.Sprintf(`{"done":%d}`, task.Index)))
			if err == nil {
				answered(task.Index)
			}
			if err == nil || longrun.IsCode(err, longrun.ETASKGONE) {
				_ = k.queue.Delete(ctx, m.Receipt)
			}
		}
	}
}

func fanoutInput() json.RawMessage {
	items := make([]string, killMapItems)
	for i := range items {
		items[i] = fmt.Sprintf(`"i%d"`, i)
	}
	return json.RawMessage(`{"prefix":"p-","items":[` + strings.Join(items, ",") + `]}`)
}

// hostMap starts the Map and works on it until it is killed.
func hostMap(path string) error {
	ctx := context.Background()
	k, err := openKillEngine(ctx, path, nil)
	if err != nil {
		return err
	}
	go func() { _ = k.e.Run(ctx) }()
	if _, err := k.e.Start(ctx, "fanout", "map-1", fanoutInput()); err != nil {
		return err
	}
	var mu sync.Mutex
	go k.workFanout(ctx, func(i int) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Println("answered", i)
	})
	select {} // until SIGKILL
}

// TestKill9MidMap kills an engine host with SIGKILL in the middle of a Map
// of 100 items (10 at a time, each a task answered by token), restarts on
// the same file and checks that the Map finishes with each item's task
// sent, answered and counted exactly once.
func TestKill9MidMap(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "longrun.db")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	killHost(ctx, t, path, []string{hostMapEnv + "=1"}, "answered ", killMapItems/2)

	k, err := openKillEngine(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The Map's machine is the admitted one here, as longrun's is in longrun dev.
	k.e.main = "fanout"
	k.runUntilCleanup(ctx, t, func(ctx context.Context) { k.workFanout(ctx, func(int) {}) })

	arn := executionARN(k.e.machines["fanout"], "map-1")
	var d *Description
	for {
		if d, err = k.e.Describe(ctx, arn); err != nil {
			t.Fatal(err)
		}
		if d.Status.Terminal() {
			break
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("the Map is still %s in %s after the restart", d.Status, d.State)
		}
	}
	if d.Status != longrun.StatusSucceeded {
		t.Fatalf("ended %s: %s %s", d.Status, d.Error, d.Cause)
	}
	// The items loaded at the restart are not admitted executions: once the
	// Map ended nothing runs (admission control counts on it).
	for n := k.e.Running(); n != 0; n = k.e.Running() {
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("Running() = %d after the only execution ended, want 0", n)
		}
	}
	var res struct {
		Count int `json:"count"`
	}
	if err := json.Unmarshal(d.Output, &res); err != nil || res.Count != killMapItems {
		t.Fatalf("output %s, want count %d", d.Output, killMapItems)
	}
	h, err := k.e.History(ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	perItem := map[string]map[int]int{}
	for _, ev := range h {
		switch ev.Type {
		case "MapIterationStarted", "MapIterationSucceeded":
			var det struct{ Index int }
			if err := json.Unmarshal(ev.Detail, &det); err != nil {
				t.Fatal(err)
			}
			if perItem[ev.Type] == nil {
				perItem[ev.Type] = map[int]int{}
			}
			perItem[ev.Type][det.Index]++
		}
	}
	types := make([]string, len(h))
	for i, ev := range h {
		types[i] = ev.Type + ":" + ev.State
	}
	if n := count(types, "TaskSubmitted:Work"); n != killMapItems {
		t.Errorf("%d task messages sent, want %d", n, killMapItems)
	}
	if n := count(types, "TaskSucceeded:Work"); n != killMapItems {
		t.Errorf("%d task results, want %d", n, killMapItems)
	}
	for i := range killMapItems {
		if perItem["MapIterationStarted"][i] != 1 || perItem["MapIterationSucceeded"][i] != 1 {
			t.Errorf("item %d started %d and succeeded %d times", i, perItem["MapIterationStarted"][i], perItem["MapIterationSucceeded"][i])
		}
	}
	if n := k.leftInQueue(t); n != 0 {
		t.Errorf("%d task messages left in the queue", n)
	}
}
