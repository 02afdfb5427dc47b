package local

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/sqlite"
)

// hostEnv makes the test binary an engine host instead of running tests:
// TestKill9 re-executes itself with it and kills the child with SIGKILL.
const hostEnv = "LONGRUN_LOCAL_ENGINE_HOST"

const killJobs = 40

func TestMain(m *testing.M) {
	if path := os.Getenv(hostEnv); path != "" {
		run := host
		if os.Getenv(hostMapEnv) != "" {
			run = hostMap
		}
		if err := run(path); err != nil {
			fmt.Fprintln(os.Stderr, "engine host:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// killEngine is an engine on a real clock with an in-process worker whose
// jobs take a few milliseconds, as `longrun dev` runs them.
type killEngine struct {
	e      *Engine
	db     *sqlite.DB
	queue  *sqlite.Queue
	mu     sync.Mutex
	notify map[string]int // finalize calls per execution id
}

func openKillEngine(ctx context.Context, path string, onFinish func(arn string, status longrun.Status)) (*killEngine, error) {
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	k := &killEngine{db: db, queue: sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{}), notify: map[string]int{}}
	notify := func(_ context.Context, p json.RawMessage) (json.RawMessage, error) {
		var req longrun.NotifyRequest
		if err := json.Unmarshal(p, &req); err != nil {
			return nil, err
		}
		k.mu.Lock()
		k.notify[req.ExecutionID]++
		k.mu.Unlock()
		return json.RawMessage(`{}`), nil
	}
	events := func(context.Context, json.RawMessage) (json.RawMessage, error) { return json.RawMessage(`{}`), nil }
	echo := func(_ context.Context, p json.RawMessage) (json.RawMessage, error) { return p, nil }
	cfg, err := engineConfig(db, k.queue, map[string]Function{"notify": notify, "events": events, "echo": echo})
	if err != nil {
		db.Close()
		return nil, err
	}
	cfg.Clock = nil // real time
	if k.e, err = New(ctx, cfg); err != nil {
		db.Close()
		return nil, err
	}
	k.e.onFinish = onFinish
	return k, nil
}

// work runs a worker: receive, a short job, SendTaskSuccess, delete. A
// message whose token is gone (completed before a crash) is deleted.
func (k *killEngine) work(ctx context.Context) {
	for ctx.Err() == nil {
		msgs, err := k.queue.Receive(ctx, 10, 100*time.Millisecond, time.Second)
		if err != nil {
			continue
		}
		for _, m := range msgs {
			var tm longrun.TaskMessage
			if err := json.Unmarshal([]byte(m.Body), &tm); err != nil {
				continue
			}
			time.Sleep(2 * time.Millisecond) // the job
			out, _ := json.Marshal(map[string]string{"done": tm.ExecutionID})
			err := k.e.SendTaskSuccess(ctx, tm.TaskToken, out)
			if err == nil || longrun.IsCode(err, longrun.ETASKGONE) {
				_ = k.queue.Delete(ctx, m.Receipt) // a failed delete only means the message comes back
			}
		}
	}
}

// host starts killJobs executions, then works on them, printing a line per
// execution that ends, until it is killed.
func host(path string) error {
	ctx := context.Background()
	var mu sync.Mutex
	k, err := openKillEngine(ctx, path, func(arn string, status longrun.Status) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Println("ended", arn, status)
	})
	if err != nil {
		return err
	}
	go func() { _ = k.e.Run(ctx) }()
	limits := longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30}
	for i := range killJobs {
		id := fmt.Sprintf("job-%02d", i)
		in := longrun.StateInput{ExecutionID: id, ExecutionARN: k.e.ExecutionARN(id), Input: json.RawMessage(`{}`), Limits: limits}
		if err := k.e.StartExecution(ctx, in); err != nil {
			return err
		}
	}
	for range 2 {
		go k.work(ctx)
	}
	select {} // until SIGKILL
}

// TestKill9 kills an engine host with SIGKILL while its executions run,
// restarts on the same file and checks that every execution finishes once.
func TestKill9(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "longrun.db")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	killHost(ctx, t, path, nil, "ended ", 5)

	done := make(chan struct{}, killJobs)
	k, err := openKillEngine(ctx, path, func(string, longrun.Status) { done <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	k.runUntilCleanup(ctx, t, k.work)

	for i := range killJobs {
		arn := k.e.ExecutionARN(fmt.Sprintf("job-%02d", i))
		for {
			d, err := k.e.Describe(ctx, arn)
			if err != nil {
				t.Fatalf("job-%02d: %v", i, err)
			}
			if d.Status.Terminal() {
				if d.Status != longrun.StatusSucceeded || string(d.Output) != fmt.Sprintf(`{"done":"job-%02d"}`, i) {
					t.Errorf("job-%02d ended %s with %s %s %s", i, d.Status, d.Output, d.Error, d.Cause)
				}
				break
			}
			select {
			case <-done:
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				t.Fatalf("job-%02d still %s in %s after the restart", i, d.Status, d.State)
			}
		}
		h, err := k.e.History(ctx, arn)
		if err != nil {
			t.Fatal(err)
		}
		types := make([]string, len(h))
		for j, ev := range h {
			types[j] = ev.Type
		}
		if count(types, "ExecutionStarted") != 1 || count(types, "ExecutionSucceeded") != 1 || count(types, "TaskSubmitted") != 1 {
			t.Errorf("job-%02d history %v", i, types)
		}
	}
	if n := k.leftInQueue(t); n != 0 {
		t.Errorf("%d task messages left in the queue", n)
	}
}

// killHost runs this test binary as an engine host on path (env says
// which), reads its output until n lines start with prefix, then kills it
// with SIGKILL and checks that it died of it.
func killHost(ctx context.Context, t *testing.T, path string, env []string, prefix string, n int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), hostEnv+"="+path), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	seen := 0
	lines := bufio.NewScanner(out)
	for seen < n && lines.Scan() {
		if strings.HasPrefix(lines.Text(), prefix) {
			seen++
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exitErr) {
		t.Fatalf("host: %v (%d %q lines before the kill)", err, seen, prefix)
	}
	if seen < n {
		t.Fatalf("the host printed only %d %q lines before exiting, want %d", seen, prefix, n)
	}
}

// runUntilCleanup runs the restarted engine and work beside it until the
// test ends, then closes the database.
func (k *killEngine) runUntilCleanup(ctx context.Context, t *testing.T, work func(context.Context)) {
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = k.e.Run(runCtx) })
	wg.Go(func() { work(runCtx) })
	t.Cleanup(func() {
		stop()
		wg.Wait()
		k.db.Close()
	})
}

func (k *killEngine) leftInQueue(t *testing.T) int {
	// A worker of the killed host may hold a message it completed but did
	// not delete; it comes back after its visibility and is deleted as gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := k.db.Read(t.Context(), func(tx *sql.Tx) error {
			return tx.QueryRowContext(t.Context(), `SELECT count(*) FROM queue_messages WHERE queue = 'jobs'`).Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}
