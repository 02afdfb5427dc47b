package webhook_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/webhook"
)

// The fixtures are the wire format DESIGN.md § Webhooks promises receivers:
// decoding and re-encoding must give the same bytes.
func TestEventWireFormat(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	stop := start.Add(3 * time.Second)
	data := webhook.Data{
		ExecutionARN: "arn:aws:states:eu-west-1:123456789012:execution:longrun:0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		ExecutionID:  "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		Job:          "ramen",
		StartDate:    start,
		StopDate:     stop,
	}
	succeeded, failed, thin := data, data, data
	succeeded.Status, succeeded.Output = longrun.StatusSucceeded, json.RawMessage(`{"message":"Your ramen is ready!"}`)
	failed.Status, failed.Error, failed.Cause = longrun.StatusFailed, "Job.Failed", "noodles burnt"
	thin.Status, thin.DescribeURL = longrun.StatusSucceeded, "https://api.example.com/executions/"+data.ExecutionID
	cases := []struct {
		file  string
		event webhook.Event
	}{
		{"event.succeeded.json", webhook.Event{Type: longrun.EventSucceeded, Timestamp: stop, Data: succeeded}},
		{"event.failed.json", webhook.Event{Type: longrun.EventFailed, Timestamp: stop, Data: failed}},
		{"event.thin.json", webhook.Event{Type: longrun.EventSucceeded, Timestamp: stop, Data: thin}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			want, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			want = bytes.TrimSpace(want)
			got, err := json.Marshal(tc.event)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n%s\nwant\n%s", got, want)
			}
			var back webhook.Event
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatal(err)
			}
			again, _ := json.Marshal(back)
			if !bytes.Equal(again, want) {
				t.Fatalf("round trip\n%s\nwant\n%s", again, want)
			}
		})
	}
}
