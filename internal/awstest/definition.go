package awstest

import (
	"encoding/json"
	"fmt"
)

// FixHeartbeatPath returns definition with every HeartbeatSecondsPath
// replaced by HeartbeatSeconds: seconds, for kumo.
//
// kumo v0.33.1 decodes HeartbeatSecondsPath but ignores it, and then panics
// (a nil *time.Timer, in the emulator's goroutine, so the whole test binary
// dies) on the first SendTaskHeartbeat for such a task. statemachine/
// longrun.asl.json reads the heartbeat from the input, so tests that send
// heartbeats on kumo must run it through this first. Only top-level states
// are rewritten (longrun's definitions have no Parallel or Map).
func FixHeartbeatPath(definition string, seconds int) (string, error) {
	var def map[string]any
	if err := json.Unmarshal([]byte(definition), &def); err != nil {
		return "", fmt.Errorf("parse definition: %w", err)
	}
	states, _ := def["States"].(map[string]any)
	for _, s := range states {
		state, _ := s.(map[string]any)
		if _, ok := state["HeartbeatSecondsPath"]; ok {
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
