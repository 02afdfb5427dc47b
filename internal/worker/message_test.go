package worker

import (
	"encoding/json"
	"reflect"
	"testing"

	longrun "github.com/longrun/longrun"
)

// messageCases are task messages as the state machine writes them and as
// it never does, where a one-pass reader could part from json.Unmarshal.
var messageCases = []string{
	`{"executionArn":"arn:x","executionId":"e1","input":{"n":1,"data":"abc"},"job":"k","limits":{"timeoutSeconds":60,"heartbeatSeconds":10},"taskToken":"t1"}`,
	`{"taskToken":"t1","executionId":"e1","input":null}`, `{"taskToken":"t1","executionId":"e1"}`, `{"TaskToken":"t2","EXECUTIONID":"e2","input":[1, 2]}`,
	`{"taskToken":"t1","taskToken":"t3","executionId":"e1","limits":null}`, `{"taskToken":1,"executionId":"e1"}`, `{"taskToken":"t1","limits":[]}`,
	`{"taskToken":"t1","input":{"x":1}`, `["taskToken"]`, `null`, ``, `{"taskToken":"\u00e9\ud83d\ude00"}`, `{"job":"a\"b","input":"x"} `,
}

func FuzzDecodeMessage(f *testing.F) {
	for _, c := range messageCases {
		f.Add(c)
	}
	f.Fuzz(checkDecodeMessage)
}

func TestDecodeMessageAsUnmarshal(t *testing.T) {
	t.Parallel()
	for _, c := range messageCases {
		checkDecodeMessage(t, c)
	}
}

// checkDecodeMessage checks decodeMessage against json.Unmarshal: the
// same message, or the same error.
func checkDecodeMessage(t *testing.T, body string) {
	var want longrun.TaskMessage
	wantErr := json.Unmarshal([]byte(body), &want)
	got, err := decodeMessage(body)
	if wantErr != nil {
		if err == nil || err.Error() != "decode task message: "+wantErr.Error() {
			t.Fatalf("decodeMessage(%q): error %v, json.Unmarshal: %v", body, err, wantErr)
		}
		return
	}
	if err != nil && (want.TaskToken != "" && want.ExecutionID != "") {
		t.Fatalf("decodeMessage(%q): %v, json.Unmarshal: %+v", body, err, want)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeMessage(%q) = %+v, json.Unmarshal: %+v", body, got, want)
	}
}
