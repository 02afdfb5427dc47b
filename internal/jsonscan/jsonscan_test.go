package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/longrun/longrun/internal/jsonscan"
)

// cases are texts where a tokenizer could part from encoding/json.
var cases = []string{
	`{}`, `[]`, `null`, ` null `, `0`, `"s"`, `true`, ``, ` `, `{`, `}`, `{"a":1}`, ` { "a" : [1, {"a": 2}] } `,
	`{"a":1,"a":2}`, `{"A":1}`, `{"a":1,"A":2}`, `{"A":1,"a":2}`, `{"\u0061":3}`, `{"b":1}`, `{"a":null}`,
	`{"a":"x\"y"}`, "{\"a\":\"\xff\"}", "{\"\xff\":1,\"a\":2}", `{"k":1}`, "{\"\u212a\":1}", `{"a":1}x`, `{"a":1} {}`,
	`{"a":1,}`, `{"a" 1}`, `{"a":01}`, `{"a":1e}`, `{"a":-}`, `{"a":"\ud800"}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}",
	`[1,2]`, `{"a":{"b":[1,2,3]},"c":"d"}`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
}

func FuzzValid(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := jsonscan.Valid(data), json.Valid(data); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid: %v", data, got, want)
		}
	})
}

func FuzzField(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"a", "k"} {
			checkField(t, data, name)
		}
		checkFields(t, data)
	})
}

// checkFields compares Fields with decoding into a struct with two fields.
func checkFields(t *testing.T, data []byte) {
	t.Helper()
	var s struct {
		A json.RawMessage `json:"a"`
		K json.RawMessage `json:"k"`
	}
	wantErr := json.Unmarshal(data, &s)
	got, err := jsonscan.Fields(data, "a", "k")
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Fields(%q): error %v, encoding/json: %v", data, err, wantErr)
	}
	if err == nil && (!bytes.Equal(got[0], s.A) || !bytes.Equal(got[1], s.K) || (got[0] == nil) != (s.A == nil) || (got[1] == nil) != (s.K == nil)) {
		t.Fatalf("Fields(%q) = %q, encoding/json: %q %q", data, got, s.A, s.K)
	}
}

// checkField compares Field with decoding into a struct with one field.
func checkField(t *testing.T, data []byte, name string) {
	t.Helper()
	var want json.RawMessage
	var wantErr error
	if name == "a" {
		var s struct {
			A json.RawMessage `json:"a"`
		}
		wantErr = json.Unmarshal(data, &s)
		want = s.A
	} else {
		var s struct {
			K json.RawMessage `json:"k"`
		}
		wantErr = json.Unmarshal(data, &s)
		want = s.K
	}
	got, found, err := jsonscan.Field(data, name)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Field(%q, %q): error %v, encoding/json: %v", data, name, err, wantErr)
	}
	if err == nil && (found != (want != nil) || !bytes.Equal(got, want)) {
		t.Fatalf("Field(%q, %q) = %s %v, encoding/json: %s", data, name, got, found, want)
	}
}

func TestMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, c := range cases {
		if got, want := jsonscan.Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%q) = %v, json.Valid: %v", c, got, want)
		}
		checkField(t, []byte(c), "a")
		checkField(t, []byte(c), "k")
		checkFields(t, []byte(c))
	}
}

func TestFieldNotAnObject(t *testing.T) {
	t.Parallel()
	_, _, err := jsonscan.Field([]byte(`[1]`), "a")
	if err == nil || !strings.Contains(err.Error(), "an array, not an object") {
		t.Fatalf("Field of an array: %v", err)
	}
}

var canonicalCases = []struct {
	text string
	want bool
}{
	{`{}`, true}, {`[]`, true}, {`null`, true}, {`-1.50e+3`, true}, {`"x"`, true}, {`{"a":1,"b":[1,"2",{"c":null}]}`, true},
	{`{"":0,"a":1}`, true}, {"{\"\u00e9\":\"\u00e8\"}", true}, {`{"a":{"b":{},"c":[]},"d":true}`, true},
	{` {}`, false}, {`{} `, false}, {`{ }`, false}, {`[1, 2]`, false}, {`{"a": 1}`, false}, {`{"a" :1}`, false},
	{`{"b":1,"a":2}`, false}, {`{"a":1,"a":2}`, false}, {`{"a":{"c":1,"b":2}}`, false}, {`{"a":1,"b":{"a":1}}`, true},
	{`"a<b"`, false}, {`"a&b"`, false}, {`"\u003c"`, false}, {`"\n"`, false}, {`"\/"`, false}, {"\"\u2028\"", false},
	{"\"\xff\"", false}, {`{"a":1}x`, false}, {`{`, false}, {``, false}, {`{}{}`, false}, {`1 2`, false}, {`[]1`, false},
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	for _, c := range canonicalCases {
		if got := jsonscan.Canonical([]byte(c.text)); got != c.want {
			t.Errorf("Canonical(%q) = %v, want %v", c.text, got, c.want)
		}
		checkCanonical(t, []byte(c.text))
	}
}

func FuzzCanonical(f *testing.F) {
	for _, c := range canonicalCases {
		f.Add([]byte(c.text))
	}
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(checkCanonical)
}

// checkCanonical checks that a text Canonical accepts is what json.Marshal
// writes for its value.
func checkCanonical(t *testing.T, data []byte) {
	if !jsonscan.Canonical(data) {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("Canonical(%q) but it does not decode: %v", data, err)
	}
	out, err := json.Marshal(v)
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("Canonical(%q) but json.Marshal writes %s (%v)", data, out, err)
	}
}
