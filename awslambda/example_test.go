package awslambda_test

import (
	"context"
	"encoding/json"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/awslambda"
)

// A user's Lambda main: the same registry as their `longrun` command
// (cli.Main), built into one bootstrap binary that template.yaml deploys as
// every function, LONGRUN_FUNCTION telling each which it is.
func ExampleMain() {
	reg := longrun.NewRegistry()
	reg.Handle("thumbnail", func(ctx context.Context, input json.RawMessage, report func(longrun.Progress)) (json.RawMessage, error) {
		info, _ := longrun.JobInfoFromContext(ctx)
		// info.ExecutionID is stable across attempts: an idempotency key.
		return json.Marshal(map[string]any{"execution": info.ExecutionID, "attempt": info.Attempt})
	}, longrun.JobOptions{
		Timeout:     10 * time.Minute,
		InputSchema: json.RawMessage(`{"type":"object","required":["url"],"properties":{"url":{"type":"string","format":"uri"}}}`),
		Retry:       longrun.RetryPolicy{MaxAttempts: 3, Backoff: 5 * time.Second, MaxBackoff: time.Minute},
	})
	awslambda.Main(reg)
}
