package samtest_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/longrun/longrun"
)

// TestBacklogOnKumo is the backlog test of internal/devapp on the AWS path:
// the real statemachine/longrun.asl.json on kumo's Step Functions, the real
// `longrun worker` poller (one job at a time, a 1 s lease) on kumo's SQS.
// Six jobs of 700 ms make the last wait about four leases in the queue; each
// succeeds, runs once (the lease, renewed on kumo's SQS, never lets a
// message come back to a second receive), and no history has a timeout.
// kumo needs some HeartbeatSeconds on Work before it takes a heartbeat (see
// awstest.FixHeartbeatPath); the deployment gives it the job timeout, as
// long as a task may live, so queue time cannot trip it here either.
func TestBacklogOnKumo(t *testing.T) {
	t.Parallel()
	f := newSinkFixture(t)

	var (
		mu   sync.Mutex
		runs = map[string]int{}
	)
	app := f.app(t, "WorkerFunction", nil, map[string]string{"LONGRUN_JOB_HEARTBEAT_SECONDS": "1", "LONGRUN_JOBS_QUEUE_URL": f.jobs.URL})
	app.Jobs = longrun.NewRegistry()
	app.Jobs.Handle("count", func(ctx context.Context, in json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
		mu.Lock()
		runs[string(in)]++
		mu.Unlock()
		select { // the job's own work
		case <-time.After(700 * time.Millisecond):
			return json.RawMessage(`{"ok":true}`), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, longrun.JobOptions{})
	poller, err := app.Poller(1, 0)
	if err != nil {
		t.Fatal(err)
	}

	const jobs = 6
	ctx := context.Background()
	var ins []longrun.StateInput
	for i := range jobs {
		id := longrun.NewExecutionID()
		in := longrun.StateInput{
			ExecutionID: id, ExecutionARN: f.engine.ExecutionARN(id),
			Input:  json.RawMessage(`{"n":` + string(rune('0'+i)) + `}`),
			Limits: longrun.Limits{TimeoutSeconds: 3600, HeartbeatSeconds: 1},
		}
		if err := f.engine.StartExecution(ctx, in); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	pollCtx, stop := context.WithCancel(ctx)
	polled := make(chan error, 1)
	go func() { polled <- poller.Run(pollCtx) }()
	defer func() { stop(); <-polled }()

	for _, in := range ins {
		if req := f.notified(t, in.ExecutionID); req.Action != longrun.NotifyFinalize || req.Status != longrun.StatusSucceeded {
			t.Errorf("%s: notify got %+v, want finalize SUCCEEDED", in.ExecutionID, req)
		}
		if out := f.ended(t, in.ExecutionARN); out.Status != "SUCCEEDED" {
			t.Errorf("%s ended %s", in.ExecutionID, out.Status)
		}
		hist, err := f.emu.SFN().GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(in.ExecutionARN)})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range hist.Events {
			if strings.Contains(string(ev.Type), "TimedOut") {
				t.Errorf("%s: history has %s", in.ExecutionID, ev.Type)
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
