package asl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"unicode/utf8"
)

// The engine decodes every state's input and encodes every state's output,
// and with 64 KiB payloads that was most of its CPU: encoding/json scans a
// document once to validate it and again to decode it, a byte at a time
// through a state machine. decodeJSON and encodeJSON are single passes over
// asl's value model (map[string]any, []any, string, json.Number, bool,
// nil) that skip runs of plain ASCII in strings eight bytes at a time.
//
// They give exactly what encoding/json gives: decodeJSON takes its fast
// path only for text it fully understands (valid JSON, strings without
// escapes or invalid UTF-8) and otherwise decodes the rest of that string
// with encoding/json, or the whole text, so escapes, invalid UTF-8 and every
// error message stay encoding/json's; encodeJSON writes what
// json.Encoder with SetEscapeHTML(false) writes (sorted keys, the same
// escapes) and hands any other Go type to it. FuzzCodec checks both against
// encoding/json.

// maxDepth is encoding/json's nesting limit; deeper text goes to it for
// its error.
const maxDepth = 10000

var errFallback = errors.New("asl: not on the fast path")

// decodeJSON decodes one JSON value (surrounding whitespace allowed).
func decodeJSON(b []byte) (any, error) {
	v, _, err := decodeDoc(b)
	return v, err
}

// decodeDoc is decodeJSON that also tells whether b is exactly what
// encodeJSON writes for the value (so b can stand for it).
func decodeDoc(b []byte) (v any, canonical bool, err error) {
	d := decoder{data: b}
	if v, err := d.document(); err == nil {
		return v, d.flaws == 0, nil
	}
	v, err = decodeJSONStd(b)
	return v, false, err
}

// sameValue reports whether a and b are the same object or array (not
// equal ones: the same, as a state passes its input on), which asl never
// modifies once decoded (setRef and the rest copy).
func sameValue(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		return ok && a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	case []any:
		b, ok := b.([]any)
		return ok && len(a) > 0 && len(a) == len(b) && &a[0] == &b[0]
	}
	return false
}

// decodeJSONStd is encoding/json's decoding, for what decodeJSON's fast
// path does not take (and for its errors).
func decodeJSONStd(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

// decoder is one pass over data. Any error only means "not on the fast
// path": the caller decodes again with encoding/json for the real one.
type decoder struct {
	data  []byte
	pos   int
	depth int
	// flaws counts what encodeJSON would write differently (whitespace,
	// unsorted or repeated keys, escapes, U+2028/U+2029): a document with
	// none is already in encodeJSON's form.
	flaws int
}

func (d *decoder) document() (any, error) {
	d.space()
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	d.space()
	if d.pos != len(d.data) {
		return nil, errFallback
	}
	return v, nil
}

func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
			d.flaws++
		default:
			return
		}
	}
}

func (d *decoder) value() (any, error) {
	if d.pos >= len(d.data) {
		return nil, errFallback
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		return d.string()
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case c == 't':
		return d.literal("true", true)
	case c == 'f':
		return d.literal("false", false)
	case c == 'n':
		return d.literal("null", nil)
	}
	return nil, errFallback
}

func (d *decoder) literal(word string, v any) (any, error) {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		return nil, errFallback
	}
	d.pos += len(word)
	return v, nil
}

func (d *decoder) object() (any, error) {
	if d.depth++; d.depth > maxDepth {
		return nil, errFallback
	}
	d.pos++ // {
	obj := map[string]any{}
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return obj, nil
	}
	prev := ""
	for n := 0; ; n++ {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, errFallback
		}
		k, err := d.string()
		if err != nil {
			return nil, err
		}
		key := k.(string)
		if n > 0 && key <= prev {
			d.flaws++
		}
		prev = key
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, errFallback
		}
		d.pos++
		d.space()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		obj[key] = v
		d.space()
		if d.pos >= len(d.data) {
			return nil, errFallback
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.space()
		case '}':
			d.pos++
			d.depth--
			return obj, nil
		default:
			return nil, errFallback
		}
	}
}

func (d *decoder) array() (any, error) {
	if d.depth++; d.depth > maxDepth {
		return nil, errFallback
	}
	d.pos++ // [
	arr := []any{}
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return arr, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		d.space()
		if d.pos >= len(d.data) {
			return nil, errFallback
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.space()
		case ']':
			d.pos++
			d.depth--
			return arr, nil
		default:
			return nil, errFallback
		}
	}
}

// string decodes the string at d.pos (its opening quote).
func (d *decoder) string() (any, error) {
	start := d.pos + 1
	i := start
	ascii := true
	for {
		i += plainRun(d.data[i:])
		if i >= len(d.data) {
			return nil, errFallback
		}
		c := d.data[i]
		if c == '"' {
			break
		}
		if c < utf8.RuneSelf {
			return d.escaped(start) // a backslash or a control character
		}
		ascii = false
		i++
	}
	s := d.data[start:i]
	if !ascii {
		if !utf8.Valid(s) {
			return d.escaped(start) // encoding/json replaces bad bytes with U+FFFD
		}
		if bytes.Contains(s, lineSep) || bytes.Contains(s, paraSep) {
			d.flaws++
		}
	}
	d.pos = i + 1
	return string(s), nil
}

var lineSep, paraSep = []byte("\u2028"), []byte("\u2029")

// escaped decodes the string starting at start (after its quote) with
// encoding/json, which knows every escape and how to replace invalid
// UTF-8; such strings are rare in payloads.
func (d *decoder) escaped(start int) (any, error) {
	i := start
	for i < len(d.data) && d.data[i] != '"' {
		if d.data[i] == '\\' {
			i++
		}
		i++
	}
	if i >= len(d.data) {
		return nil, errFallback
	}
	var s string
	if err := json.Unmarshal(d.data[start-1:i+1], &s); err != nil {
		return nil, errFallback
	}
	d.pos = i + 1
	d.flaws++
	return s, nil
}

// number takes a number as written (json.Number), after checking JSON's
// grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() (any, error) {
	b, start := d.data, d.pos
	i := start
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return nil, errFallback
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return nil, errFallback
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return nil, errFallback
		}
		i = j
	}
	d.pos = i
	return json.Number(b[start:i]), nil
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// plainRun is the length of the prefix of b that a JSON string holds as
// is: ASCII without '"', '\\' or control characters. It tests eight bytes
// at a time (the SWAR tests of "Bit Twiddling Hacks": a byte less than n,
// a byte equal to n), then finds the exact position a byte at a time.
func plainRun[T []byte | string](b T) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := b[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		ctl := (x - ones*0x20) &^ x
		quote := x ^ (ones * '"')
		quote = (quote - ones) &^ quote
		bslash := x ^ (ones * '\\')
		bslash = (bslash - ones) &^ bslash
		if (ctl|quote|bslash|x)&highs != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return i
		}
	}
	return i
}

// encodeJSON renders v compactly without HTML escaping, as Step Functions
// does, byte for byte as json.Encoder with SetEscapeHTML(false) would.
// v holds decodeJSON's types (anything else goes to encoding/json), so it
// cannot fail.
func encodeJSON(v any) json.RawMessage {
	return appendJSON(nil, v)
}

func appendJSON(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		if v {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case string:
		return appendString(dst, v)
	case json.Number:
		if v == "" {
			return append(dst, '0') // encoding/json's zero Number
		}
		if !validNumber(string(v)) {
			return appendStd(dst, v) // for its panic message
		}
		return append(dst, v...)
	case map[string]any:
		if v == nil {
			return append(dst, "null"...)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendJSON(dst, v[k])
		}
		return append(dst, '}')
	case []any:
		if v == nil {
			return append(dst, "null"...)
		}
		dst = append(dst, '[')
		for i, x := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSON(dst, x)
		}
		return append(dst, ']')
	}
	return appendStd(dst, v)
}

// appendStd is encoding/json's encoding of v, for the Go types decodeJSON
// never makes (numbers from JSONata, for instance).
func appendStd(dst []byte, v any) []byte {
	return append(dst, encodeJSONStd(v)...)
}

func encodeJSONStd(v any) json.RawMessage {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		panic(fmt.Sprintf("asl: encode %T: %v", v, err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// validNumber reports whether s is a JSON number, as a json.Number must be
// to encode.
func validNumber(s string) bool {
	d := decoder{data: []byte(s)}
	_, err := d.number()
	return err == nil && d.pos == len(s)
}

const hexDigits = "0123456789abcdef"

// appendString is encoding/json's appendString with escapeHTML false.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		i += plainRun(s[i:])
		if i >= len(s) {
			break
		}
		if b := s[i]; b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
