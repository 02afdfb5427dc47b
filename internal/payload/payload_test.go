package payload

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// bigText is n bytes of random base64.
func bigText(seed uint64, n int) string {
	raw := make([]byte, n*3/4)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// chunksOf is the set of chunks Ref stores for doc, and the ref.
func chunksOf(t *testing.T, doc []byte) (map[string]bool, string) {
	t.Helper()
	c := NewChunks("test")
	ref := c.Ref("owner", doc)
	set := map[string]bool{}
	for _, r := range c.rows {
		if len(r.data) > chunkMax {
			t.Fatalf("chunk of %d bytes", len(r.data))
		}
		set[string(r.data)] = true
	}
	return set, ref
}

// A large value is cut the same way alone and inside any document that
// holds it, whatever surrounds it: its chunks are all shared, so it is
// stored once (only the few bytes around it are chunks of their own).
func TestEmbeddedValuesShareEveryChunk(t *testing.T) {
	t.Parallel()
	data := bigText(3, 256<<10)
	input := []byte(`{"n":7,"data":"` + data + `"}`)
	for _, tc := range []struct {
		name  string
		inner []byte
		doc   []byte
	}{
		{"input in a wrapper", input, []byte(`{"executionId":"0199","executionArn":"arn:aws:states:local:0:execution:m:0199","input":` + string(input) + `,"job":"","limits":{"timeoutSeconds":60}}`)},
		{"input in a task message", input, []byte(`{"taskToken":"` + bigText(9, 100) + `","input":` + string(input) + `}`)},
		{"string in another object", []byte(`"` + data + `"`), []byte(`{"result":"` + data + `","more":[1,2,3]}`)},
		{"a small value stays whole", []byte(`{"a":"` + bigText(4, 3000) + `"}`), []byte(`[{"a":"` + bigText(4, 3000) + `"}]`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			alone, _ := chunksOf(t, tc.inner)
			wrapped, _ := chunksOf(t, tc.doc)
			for c := range alone {
				if !wrapped[c] && len(c) >= tinyGap {
					t.Errorf("a chunk of %d bytes of the value alone is not among the document's", len(c))
				}
			}
			var own int
			for c := range wrapped {
				if !alone[c] {
					own += len(c)
				}
			}
			if extra := len(tc.doc) - len(tc.inner); own > extra+tinyGap {
				t.Errorf("the document adds %d bytes of chunks for %d bytes around the value", own, extra)
			}
		})
	}
}

// Forced cut points need JSON; anything else is cut by content only, and
// quotes inside strings (escaped) do not end them.
func TestBounds(t *testing.T) {
	t.Parallel()
	long := bigText(5, 4000)
	for _, tc := range []struct {
		name string
		doc  string
		want []int
	}{
		{"not JSON", `{"a":"` + long, nil},
		{"unbalanced", `]` + long, nil},
		{"escaped quote inside", `{"a":"x\"` + long + `"}`, []int{5, 5 + 4 + len(long) + 1}},
		{"small values", `{"a":"b"}`, nil},
	} {
		if got, _ := bounds([]byte(tc.doc), nil, nil); !equal(got, tc.want) {
			t.Errorf("%s: bounds %v, want %v", tc.name, got, tc.want)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Small payloads are stored as they are; large ones as refs.
func TestRefInline(t *testing.T) {
	t.Parallel()
	c := NewChunks("engine")
	small := []byte(`{"a":1}`)
	if got := c.Ref("o", small); got != string(small) || IsRef(got) {
		t.Errorf("small payload stored as %q", got)
	}
	large := []byte(`"` + bigText(6, 10000) + `"`)
	if got := c.Ref("o", large); !IsRef(got) || len(got) > 200 {
		t.Errorf("large payload stored as %d bytes", len(got))
	}
}

// Bytes that are not UTF-8 (which a JSON string cannot carry unchanged)
// are never kept in a ref, where history events would encode them: a
// small piece of them becomes a chunk instead.
func TestInvalidUTF8NotInline(t *testing.T) {
	t.Parallel()
	doc := []byte("{\"k\xff\":\"" + bigText(7, 4000) + "\"}")
	c := NewChunks("engine")
	ref := c.Ref("o", doc)
	if !utf8.ValidString(ref) {
		t.Errorf("the ref holds bytes that are not UTF-8")
	}
	var joined []byte
	for _, r := range c.rows {
		joined = append(joined, r.data...)
	}
	if !bytes.Contains(joined, []byte("k\xff")) {
		t.Errorf("the piece with the invalid byte is not a chunk")
	}
}

func BenchmarkRef64K(b *testing.B) {
	doc := []byte(`{"n":1,"data":"` + bigText(1, 64<<10) + `"}`)
	c := NewChunks("engine")
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		c.Reset()
		c.Ref("owner", doc[:len(doc):len(doc)])
	}
}

// A large value cut inside a document is, cut alone afterwards, the same
// pieces: a lookup, with no chunk of its own.
func TestEmbeddedValueRefReused(t *testing.T) {
	t.Parallel()
	input := `{"n":7,"data":"` + bigText(11, 20000) + `"}`
	doc := []byte(`{"QueueUrl":"q","MessageBody":{"taskToken":"t","input":` + input + `}}`)
	body := []byte(`{"taskToken":"t","input":` + input + `}`)
	c := NewChunks("engine")
	c.Ref("o", doc)
	rows := len(c.rows)
	whole := c.Ref("o", body)
	if len(c.rows) != rows {
		t.Errorf("the body added %d chunks", len(c.rows)-rows)
	}
	fresh := NewChunks("engine")
	if want := fresh.Ref("o", body); whole != want {
		t.Errorf("the body's ref from the document differs from its own:\n%q\n%q", whole, want)
	}
}

// A large value already cut in this transaction, met again inside another
// document (a task's output in its result, then in the state's output), is
// not cut and hashed again: its pieces are reused, the ref is exactly what
// cutting the document afresh gives, and no chunk is added for the value.
func TestKnownValueInsideAnotherDocument(t *testing.T) {
	t.Parallel()
	output := `{"n":7,"result":"` + bigText(12, 40000) + `"}`
	first := []byte(`{"Payload":` + output + `,"StatusCode":200}`)
	second := []byte(`{"executionId":"x","input":{"a":"` + bigText(13, 3000) + `"},"result":` + output + `}`)
	c := NewChunks("engine")
	c.Ref("o", first)
	c.cuts, c.spans = bounds(second, c.cuts, c.spans)
	at := bytes.Index(second, []byte(output))
	if known := c.knownSpans("o", second); len(known) != 1 || known[0].start != at || known[0].end != at+len(output) {
		t.Fatalf("known spans %v, want the output at [%d, %d)", known, at, at+len(output))
	}
	if known := c.knownSpans("other owner", second); len(known) != 0 {
		t.Errorf("another owner's document reuses %v", known)
	}
	rows := len(c.rows)
	got := c.Ref("o", second)
	fresh := NewChunks("engine")
	if want := fresh.Ref("o", second); got != want {
		t.Fatalf("the ref with the value reused differs from a fresh one:\n%q\n%q", got, want)
	}
	var added int
	for _, r := range c.rows[rows:] {
		added += len(r.data)
	}
	if added > len(second)-len(output) {
		t.Errorf("the second document added %d bytes of chunks; only the %d around the known value are new", added, len(second)-len(output))
	}
}
