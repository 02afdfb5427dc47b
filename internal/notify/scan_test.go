package notify

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/longrun/longrun"
)

var finalizeCases = []string{
	`{"action":"finalize","executionId":"e1","output":{"n":1,"result":"abc"},"status":"SUCCEEDED"}`,
	`{"action":"finalize","executionId":"e1","failure":{"Error":"E","Cause":"c"},"status":"FAILED"}`,
	`{"action":"finalize","executionId":"e1","output":null,"status":"SUCCEEDED"}`, `{"Action":"finalize","ExecutionId":"e1"}`,
	`{"action":"finalize","executionId":"e1","detail-type":"x"}`, `{"action":"finalize","executionId":"e1","detail-type":1}`,
	`{"action":"deliver","executionId":"e1"}`, `{"action":"finalize"}`, `{"action":"finalize","executionId":2}`,
	`{"action":"finalize","executionId":"e1","failure":null,"output":[1, 2]}`, `{"action":"finalize","executionId":"e1"`, `[]`, `null`,
}

func FuzzScanFinalize(f *testing.F) {
	for _, c := range finalizeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(checkScanFinalize)
}

func TestScanFinalizeAsUnmarshal(t *testing.T) {
	t.Parallel()
	for _, c := range finalizeCases {
		checkScanFinalize(t, []byte(c))
	}
}

// checkScanFinalize checks that scanFinalize takes exactly the finalize
// requests the long way would finalize, decoded as json.Unmarshal does.
func checkScanFinalize(t *testing.T, raw []byte) {
	var probe struct {
		Action     string `json:"action"`
		DetailType string `json:"detail-type"`
	}
	var want longrun.NotifyRequest
	finalizes := json.Unmarshal(raw, &probe) == nil && probe.DetailType == "" && probe.Action == longrun.NotifyFinalize &&
		json.Unmarshal(raw, &want) == nil && want.ExecutionID != ""
	got, ok := scanFinalize(raw)
	if ok != finalizes {
		t.Fatalf("scanFinalize(%q) ok = %v, the long way finalizes: %v", raw, ok, finalizes)
	}
	if ok && !reflect.DeepEqual(got, want) {
		t.Fatalf("scanFinalize(%q) = %+v, json.Unmarshal: %+v", raw, got, want)
	}
}
