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
	d := jsontext.NewDecoder(bytes.NewBuffer(doc), lenient...)
	var (
		value json.RawMessage
		found bool
	)
	switch k := d.PeekKind(); k {
	case '{':
	case 'n':
		if err := d.SkipValue(); err != nil {
			return nil, false, err
		}
		return nil, false, atEnd(d)
	case 0:
		_, err := d.ReadToken()
		return nil, false, err
	default:
		return nil, false, fmt.Errorf("the JSON value is %s, not an object", kindName(k))
	}
	if _, err := d.ReadToken(); err != nil {
		return nil, false, err
	}
	for d.PeekKind() == '"' {
		tok, err := d.ReadToken()
		if err != nil {
			return nil, false, err
		}
		// A struct with one field takes every key that folds to its name.
		match := strings.EqualFold(tok.String(), name)
		start := d.InputOffset() // after the name: the colon comes with the value
		if err := d.SkipValue(); err != nil {
			return nil, false, err
		}
		if match {
			value, found = bytes.TrimLeft(doc[start:d.InputOffset()], " \t\r\n:"), true
		}
	}
	if _, err := d.ReadToken(); err != nil { // }
		return nil, false, err
	}
	return value, found, atEnd(d)
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
