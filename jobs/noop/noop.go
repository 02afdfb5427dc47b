// Package noop is a job that returns its input at once: the baseline for
// benchmarks of everything around a job (API, orchestration, queue, notify).
package noop

import (
	"context"
	"encoding/json"

	longrun "github.com/longrun/longrun"
)

// Job returns its input as its output.
func Job(_ context.Context, input json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
	if len(input) == 0 {
		return json.RawMessage("null"), nil
	}
	return input, nil
}

var _ longrun.Job = Job
