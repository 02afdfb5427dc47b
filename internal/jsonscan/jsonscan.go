// Package jsonscan reads one top-level field of a JSON object, and checks
// that a text is JSON, without decoding the rest: encoding/json validates
// a whole document before it decodes even one field of it, and the task
// messages, Lambda payloads and results the local engine passes around
// carry payloads of up to 256 KiB. It tokenizes with jsontext (the Go
// team's encoding/json/v2 tokenizer, github.com/go-json-experiment/json),
// which skips a value without building it, in one pass.
//
// Both functions accept exactly what encoding/json accepts and give what
// it gives (FuzzValid and FuzzField check that): Valid is json.Valid;
// Field is decoding the document into a struct with that one field.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// encoding/json takes repeated names (the last wins) and invalid UTF-8 in
// strings (replaced by U+FFFD when decoded); jsontext refuses both unless
// told otherwise.
var lenient = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// Valid reports whether data is one JSON value (surrounded by
// whitespace, if any), as json.Valid does, in a single pass.
func Valid(data []byte) bool {
	d := jsontext.NewDecoder(bytes.NewBuffer(data), lenient...)
	if err := d.SkipValue(); err != nil {
		return false
	}
	return atEnd(d) == nil
}

// Field returns the value of the top-level field name of the JSON object
// doc, as written (a slice of doc), and whether it is there. It matches
// names as encoding/json matches a struct field's (exactly or else without
// regard to case, the last matching one winning), and a null document has
// no fields. The rest of doc is skipped, not decoded, but still checked: a
// doc that is not JSON, or not an object, is an error.
func Field(doc []byte, name string) (json.RawMessage, bool, error) {
	values, err := Fields(doc, name)
	if err != nil {
		return nil, false, err
	}
	return values[0], values[0] != nil, nil
}

// Fields is Field for several names at once, in one pass: values[i] is
// the value of names[i], nil if absent. The names must differ without
// regard to case, as the fields of a struct encoding/json decodes into do.
func Fields(doc []byte, names ...string) (values []json.RawMessage, err error) {
	values = make([]json.RawMessage, len(names))
	d := jsontext.NewDecoder(bytes.NewBuffer(doc), lenient...)
	switch k := d.PeekKind(); k {
	case '{':
	case 'n':
		if err := d.SkipValue(); err != nil {
			return nil, err
		}
		return values, atEnd(d)
	case 0:
		_, err := d.ReadToken()
		return nil, err
	default:
		return nil, fmt.Errorf("the JSON value is %s, not an object", kindName(k))
	}
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	for d.PeekKind() == '"' {
		tok, err := d.ReadToken()
		if err != nil {
			return nil, err
		}
		// A struct field takes every key that folds to its name.
		key, match := tok.String(), -1
		for i, name := range names {
			if strings.EqualFold(key, name) {
				match = i
				break
			}
		}
		start := d.InputOffset() // after the name: the colon comes with the value
		if err := d.SkipValue(); err != nil {
			return nil, err
		}
		if match >= 0 {
			values[match] = bytes.TrimLeft(doc[start:d.InputOffset()], " \t\r\n:")
		}
	}
	if _, err := d.ReadToken(); err != nil { // }
		return nil, err
	}
	return values, atEnd(d)
}

// atEnd checks that nothing but whitespace follows the value.
func atEnd(d *jsontext.Decoder) error {
	if _, err := d.ReadToken(); !errors.Is(err, io.EOF) {
		if err == nil {
			return errors.New("unexpected data after the JSON value")
		}
		return err
	}
	return nil
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case '[':
		return "an array"
	}
	return "not a value"
}

// Canonical reports whether data is exactly what json.Marshal writes for
// the value data decodes to (with UseNumber): compact, the names of each
// object sorted and unique, numbers as written, and strings without an
// escape or a character json.Marshal escapes (<, >, &, U+2028, U+2029,
// invalid UTF-8). A client's input usually is (JSON.stringify and
// json.Marshal of a struct write it so but for key order), and then
// decoding and encoding it again would give the same bytes. It may say
// false for a text that is canonical with escapes in it: that only costs
// the re-encoding.
func Canonical(data []byte) bool {
	d := jsontext.NewDecoder(bytes.NewBuffer(data), lenient...)
	type object struct {
		last  string
		names int
	}
	var objects []object
	var prev int64
	for first := true; first || d.StackDepth() > 0; first = false {
		tok, err := d.ReadToken()
		if err != nil {
			return false
		}
		end := d.InputOffset()
		raw := data[prev:end]
		prev = end
		// Each token follows nothing, a comma or a colon, and no whitespace.
		if len(raw) > 0 && (raw[0] == ',' || raw[0] == ':') {
			raw = raw[1:]
		}
		if len(raw) == 0 || raw[0] == ' ' || raw[0] == '\t' || raw[0] == '\n' || raw[0] == '\r' {
			return false
		}
		switch tok.Kind() {
		case '{':
			objects = append(objects, object{})
		case '}':
			objects = objects[:len(objects)-1]
		case '"':
			if !plainString(raw) {
				return false
			}
			if kind, n := d.StackIndex(d.StackDepth()); kind == '{' && n%2 == 1 { // a name
				o := &objects[len(objects)-1]
				name := tok.String()
				if o.names > 0 && name <= o.last {
					return false
				}
				o.last, o.names = name, o.names+1
			}
		}
	}
	return prev == int64(len(data)) && atEnd(d) == nil // nothing after the value, not even whitespace
}

// plainString reports whether the string token raw holds no escape and
// nothing json.Marshal would escape.
func plainString(raw []byte) bool {
	s := raw[1 : len(raw)-1]
	for _, c := range []byte{'\\', '<', '>', '&'} {
		if bytes.IndexByte(s, c) >= 0 {
			return false
		}
	}
	return utf8.Valid(s) && !bytes.Contains(s, []byte("\u2028")) && !bytes.Contains(s, []byte("\u2029"))
}
