package asl

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestVariableSizeLimits: one state may assign at most 256 KiB of
// variables (https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html#variable-limits);
// past it the state fails with States.DataLimitExceeded, which States.ALL
// does not catch.
func TestVariableSizeLimits(t *testing.T) {
	t.Parallel()
	def := `{"StartAt": "A", "States": {
		"A": {"Type": "Pass", "Assign": {"a.$": "$.s", "b.$": "$.s"}, "OutputPath": null, "Next": "B"},
		"B": {"Type": "Pass", "Parameters": {"same.$": "States.ArrayContains(States.Array($a), $b)"}, "End": true}}}`
	m, err := Parse([]byte(def))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		size   int
		status string
	}{
		{"two variables of 100 KiB", 100 * 1024, StatusSucceeded},
		{"two variables of 130 KiB", 130 * 1024, StatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, _ := json.Marshal(map[string]string{"s": strings.Repeat("x", tc.size)})
			res, err := Run(context.Background(), m, in, RunOptions{Invoke: func(context.Context, *Task, string) (json.RawMessage, error) { return nil, nil }})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.status {
				t.Fatalf("status %s (%s: %s), want %s", res.Status, res.Error, res.Cause, tc.status)
			}
			if tc.status == StatusFailed && res.Error != ErrDataLimitExceeded {
				t.Fatalf("error %s, want %s", res.Error, ErrDataLimitExceeded)
			}
		})
	}
}
