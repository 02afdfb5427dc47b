package webhook

import (
	"encoding/json"
	"time"

	"github.com/longrun/longrun"
)

// Event is the body of every longrun webhook: one per terminal outcome of an
// execution. The same event (same webhook-id, same body) is sent on every
// retry and redelivery; only webhook-timestamp and the signature change.
type Event struct {
	Type      longrun.EventType `json:"type"`      // execution.succeeded|failed|timed_out|aborted
	Timestamp time.Time         `json:"timestamp"` // when the execution ended
	Data      Data              `json:"data"`
}

// Data describes the execution the event is about, as describe would.
type Data struct {
	ExecutionARN string          `json:"executionArn"`
	ExecutionID  string          `json:"executionId"`
	Job          string          `json:"job,omitempty"` // the kind of job that ran
	Status       longrun.Status  `json:"status"`
	Output       json.RawMessage `json:"output,omitempty"` // SUCCEEDED, unless too large (see DescribeURL)
	Error        string          `json:"error,omitempty"`  // FAILED, TIMED_OUT, ABORTED
	Cause        string          `json:"cause,omitempty"`
	StartDate    time.Time       `json:"startDate"`
	StopDate     time.Time       `json:"stopDate"`
	// DescribeURL is set instead of Output when the output is too large to
	// send inline: fetch it there with the API key.
	DescribeURL string `json:"describeUrl,omitempty"`
}
