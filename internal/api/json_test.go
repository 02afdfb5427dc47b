package api

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/client"
	"github.com/longrun/longrun/internal/jsonscan"
)

// canonicalJSON keeps a canonical input as it is and re-encodes any other;
// stateInputSize counts the input instead of encoding it: both must give
// exactly what decoding and json.Marshal give.
func TestCanonicalInputSizedAsMarshalled(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`{}`, `null`, `"s"`, `12345678901234567890`, `{"a":1,"b":[true,null,"x"]}`, `{"b":1,"a":2}`, ` { "a" : 1 } `,
		`{"html":"<a href='x'>&</a>"}`, `{"html":"\u003ca\u003e"}`, `{"s":"é ☃ \u2028"}`, `{"a":1,"a":2}`, "\"\xff\"",
	} {
		dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got := canonicalJSON(json.RawMessage(raw))
		if !bytes.Equal(got, want) {
			t.Errorf("canonicalJSON(%s) = %s, want %s", raw, got, want)
		}
		in := longrun.StateInput{ExecutionID: "x", ExecutionARN: "arn:x", Input: got, Job: "k"}
		full, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := stateInputSize(in); err != nil || n != len(full) {
			t.Errorf("stateInputSize with %s = %d, %v; json.Marshal writes %d bytes", got, n, err, len(full))
		}
	}
}

// marshalExecution must write exactly what json.Encoder writes for an
// execution, whatever its input, output and strings hold.
func TestMarshalExecutionAsEncoder(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 26, 15, 0, 0, 123, time.UTC)
	for _, c := range []struct {
		in, out, name, cause string
	}{
		{`{"a":1}`, `{"n":1,"result":"abc"}`, "n1", ""},
		{`{"a":1}`, ``, `,"input":0`, `,"output":0 "input":0`},
		{`{"b":1,"a":2}`, `[1,2]`, "x", ""},
		{`{"a":"<b>"}`, `"<b>"`, "x", "c"},
		{`{"a":"\u003cb\u003e"}`, `{"z":"&"}`, "x", "c"},
		{`{"a": 1}`, `null`, "", ""},
		{`"s"`, `{"a":"\u2028"}`, "", ""},
		{`null`, `1.50`, "", `<&>`},
		{``, `{}`, "", ""},
		{`{}`, "\"\xff\"", "", ""},
	} {
		stop := start.Add(time.Second)
		e := client.Execution{ExecutionARN: "arn:aws:states:x:1:execution:sm:" + c.name, ExecutionID: c.name, Name: c.name, Status: "SUCCEEDED",
			Input: json.RawMessage(c.in), Output: json.RawMessage(c.out), Cause: c.cause, StartDate: start, StopDate: &stop,
			Progress: &client.Progress{Percent: 50, Message: `"input":0`, UpdatedAt: start},
			Webhook:  &client.Webhook{ID: "w", Type: "t", State: "s", Attempts: []client.Attempt{{At: start, StatusCode: 200}}}}
		var want bytes.Buffer
		wantErr := json.NewEncoder(&want).Encode(e)
		got, ok := marshalExecution(e)
		if !ok {
			if jsonscan.Canonical([]byte(c.in)) && (c.out == "" || jsonscan.Canonical([]byte(c.out))) {
				t.Errorf("marshalExecution(input %s, output %s) declined canonical JSON", c.in, c.out)
			}
			continue
		}
		if wantErr != nil || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("marshalExecution(input %s, output %s):\n got %s\nwant %s (%v)", c.in, c.out, got, want.Bytes(), wantErr)
		}
	}
}
