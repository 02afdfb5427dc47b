package asl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// codecCases are texts where a single-pass JSON codec could part from
// encoding/json: escapes, invalid UTF-8, U+2028, numbers at the edge of
// the grammar, repeated keys, whitespace, and invalid JSON.
var codecCases = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `-0.5e+10`, `1E5`, `12345678901234567890`, `1.`, `.5`, `01`, `-`, `1e`, `+1`,
	`true`, `false`, `null`, `nul`, `tru`, `t`, ``, ` `, `  {"a" : 1 }  `, "\t[1,\n2]\r",
	`{"b":1,"a":2}`, `{"a":1,"a":2}`, `{"a":1,"b":{"c":[1,2,{"d":null}]}}`,
	`"plain ascii that is longer than eight bytes"`, `"a\"b"`, `"tab\there"`, `"\u00e9\ud83d\ude00"`,
	`"\ud800"`, `"\ud800\u0041"`, `"bad \x escape"`, "\"raw\x01control\"", "\"raw\ttab\"",
	"\"h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\xa8 \xe2\x80\xa9 \xf0\x9f\x98\x80\"", "\"bad \xff utf8\"", "\"cut \xe2\x80\"",
	`"<html> & 'quotes'"`, `"\/slash"`, `"\u2028"`, `{"x":"\u0000"}`,
	`{"a":1,}`, `[1,]`, `[1 2]`, `{"a" 1}`, `{1:2}`, `{"a":1}}`, `{} }`, `[] ]`, `{}{}`, `[1][2]`, `"unterminated`,
	`{"a":`, `[`, `{`, `"\"`, strings.Repeat("[", 100) + strings.Repeat("]", 100),
}

func TestCodecMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, c := range codecCases {
		checkCodec(t, []byte(c))
	}
	checkCodec(t, benchDoc(64<<10))
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		checkCodec(t, []byte(strings.Repeat("[", depth)+strings.Repeat("]", depth)))
	}
}

func FuzzCodec(f *testing.F) {
	for _, c := range codecCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCodec(t, data)
	})
}

// checkCodec checks decodeJSON and encodeJSON against encoding/json on
// data: the same value or the same error, the same bytes out.
func checkCodec(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := decodeJSONStd(data)
	got, err := decodeJSON(data)
	if (err != nil) != (wantErr != nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("decode %q: error %v, encoding/json: %v", data, err, wantErr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decode %q: %#v, encoding/json: %#v", data, got, want)
	}
	enc, std := encodeJSON(got), encodeJSONStd(want)
	if !bytes.Equal(enc, std) {
		t.Fatalf("encode %q: %s, encoding/json: %s", data, enc, std)
	}
	// A document decodeDoc calls canonical stands for its value as is.
	if _, canonical, _ := decodeDoc(data); canonical && !bytes.Equal(data, enc) {
		t.Fatalf("decodeDoc(%q) says canonical, but encodeJSON writes %s", data, enc)
	}
}

func TestDecodeDocCanonical(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		text string
		want bool
	}{
		{`{"a":1,"b":[true,null,"x<&>"]}`, true}, {`{}`, true}, {`"é"`, true}, {`-1.0E+2`, true},
		{`{"b":1,"a":2}`, false}, {`{"a":1,"a":2}`, false}, {`{"a": 1}`, false}, {` {}`, false}, {`"\n"`, false},
		{"\"\u2028\"", false}, {"\"\xff\"", false}, {`{"a":1}}`, false},
	} {
		if _, got, _ := decodeDoc([]byte(c.text)); got != c.want {
			t.Errorf("decodeDoc(%q) canonical = %v, want %v", c.text, got, c.want)
		}
	}
}

func TestEncodeJSONOtherTypes(t *testing.T) {
	t.Parallel()
	for _, v := range []any{
		map[string]any(nil), []any(nil), json.Number(""), 1.5, 3, []string{"a<b"}, map[string]any{"f": 2.5e100, "i": int64(-7), "s": []any{"\u2029\x7f\x00"}},
	} {
		if got, want := encodeJSON(v), encodeJSONStd(v); !bytes.Equal(got, want) {
			t.Errorf("encode %#v: %s, encoding/json: %s", v, got, want)
		}
	}
}

// benchDoc is a state input like BenchmarkPayload64K's: some fields and
// n bytes of random base64 text.
func benchDoc(n int) []byte {
	raw := make([]byte, n*3/4)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	doc, err := json.Marshal(map[string]any{
		"executionId": "0b5c1f9e", "job": "", "limits": map[string]any{"timeoutSeconds": 900},
		"input": map[string]any{"n": 7, "data": base64.StdEncoding.EncodeToString(raw)},
	})
	if err != nil {
		panic(err)
	}
	return doc
}

func BenchmarkDecodeJSON(b *testing.B) {
	doc := benchDoc(64 << 10)
	for _, c := range []struct {
		name   string
		decode func([]byte) (any, error)
	}{{"asl", decodeJSON}, {"encoding-json", decodeJSONStd}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if _, err := c.decode(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeJSON(b *testing.B) {
	v, err := decodeJSON(benchDoc(64 << 10))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		encode func(any) json.RawMessage
	}{{"asl", encodeJSON}, {"encoding-json", encodeJSONStd}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				c.encode(v)
			}
		})
	}
}
