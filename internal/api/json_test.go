package api

import (
	"bytes"
	"encoding/json"
	"testing"

	longrun "github.com/longrun/longrun"
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
