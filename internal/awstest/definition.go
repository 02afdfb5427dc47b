package awstest

import (
	"encoding/json"
	"fmt"
	"strings"
)

// FixHeartbeatPath returns definition with every HeartbeatSecondsPath
// replaced by HeartbeatSeconds: seconds, and every .waitForTaskToken Task
// state without a heartbeat given HeartbeatSeconds: seconds, for kumo.
//
// kumo v0.33.1 decodes HeartbeatSecondsPath but ignores it, and then panics
// (a nil *time.Timer, in the emulator's goroutine, so the whole test binary
// dies) on the first SendTaskHeartbeat for a task without HeartbeatSeconds.
// statemachine/longrun.asl.json's Work state has no heartbeat timeout (the
// worker's lease on its message is the liveness check: docs/state-machine.md)
// and the worker heartbeats on receipt, so tests that run workers on kumo
// must run the definition through this first, with seconds longer than any
// queue wait the test makes. Only top-level states are rewritten (longrun's
// definitions have no Parallel or Map).
func FixHeartbeatPath(definition string, seconds int) (string, error) {
	var def map[string]any
	if err := json.Unmarshal([]byte(definition), &def); err != nil {
		return "", fmt.Errorf("parse definition: %w", err)
	}
	states, _ := def["States"].(map[string]any)
	for _, s := range states {
		state, _ := s.(map[string]any)
		resource, _ := state["Resource"].(string)
		_, path := state["HeartbeatSecondsPath"]
		_, fixed := state["HeartbeatSeconds"]
		if path || (strings.HasSuffix(resource, ".waitForTaskToken") && !fixed) {
			delete(state, "HeartbeatSecondsPath")
			state["HeartbeatSeconds"] = seconds
		}
	}
	b, err := json.MarshalIndent(def, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode definition: %w", err)
	}
	return string(b), nil
}
