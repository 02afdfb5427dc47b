package local_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/asl"
	"github.com/longrun/longrun/internal/local"
	"github.com/longrun/longrun/internal/orchestratortest"
	"github.com/longrun/longrun/internal/sqlite"
)

// TestConformance runs the orchestrator suite on the local engine with the
// real state machines, on real time (as `longrun dev` runs).
func TestConformance(t *testing.T) {
	t.Parallel()
	orchestratortest.Run(t, conformanceHarness)
}

func conformanceHarness(t *testing.T) orchestratortest.Harness {
	t.Helper()
	const (
		queueURL  = "http://localhost/000000000000/jobs"
		notifyARN = "arn:aws:lambda:us-east-1:000000000000:function:notify"
		smPrefix  = "arn:aws:states:us-east-1:000000000000:stateMachine:"
	)
	ctx, cancel := context.WithCancel(context.Background())
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longrun.db"))
	if err != nil {
		t.Fatal(err)
	}
	jobs := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	var machines []local.Machine
	for _, name := range []string{"longrun", "deliver"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "statemachine", name+".asl.json"))
		if err != nil {
			t.Fatal(err)
		}
		def, err := asl.Substitute(raw, map[string]string{"JobsQueueUrl": queueURL, "NotifyFunctionArn": notifyARN})
		if err != nil {
			t.Fatal(err)
		}
		machines = append(machines, local.Machine{Name: name, ARN: smPrefix + name, Definition: def})
	}
	notify := make(chan longrun.NotifyRequest, 10)
	engine, err := local.New(ctx, local.Config{
		DB: db, Clock: db.Clock,
		Machines: machines, Main: "longrun", Deliver: "deliver",
		Functions: map[string]local.Function{"notify": func(_ context.Context, payload json.RawMessage) (json.RawMessage, error) {
			var req longrun.NotifyRequest
			if err := json.Unmarshal(payload, &req); err != nil {
				return nil, err
			}
			notify <- req
			if req.Action == longrun.NotifyDeliver {
				return json.Marshal(longrun.DeliverResult{Done: true})
			}
			return json.RawMessage(`{}`), nil
		}},
		Queues: map[string]longrun.Queue{queueURL: jobs},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- engine.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = db.Close()
	})
	return orchestratortest.Harness{
		Orchestrator: engine,
		Tasks:        engine,
		Jobs:         jobs,
		Notify:       notify,
		Describe: func(ctx context.Context, arn string) (orchestratortest.Execution, error) {
			d, err := engine.Describe(ctx, arn)
			if err != nil {
				return orchestratortest.Execution{}, err
			}
			return orchestratortest.Execution{Status: d.Status, Error: d.Error, Cause: d.Cause, Output: d.Output}, nil
		},
	}
}
