package longrun

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// A kind's InputSchema is compiled once, when the kind is registered, with
// github.com/santhosh-tekuri/jsonschema (all drafts from 4 to 2020-12, the
// official test suite passed; 2020-12 when the schema names no "$schema").
// "format" is asserted, not only annotated, so {"format": "email"} rejects
// what is not an e-mail address. References resolve only inside the schema:
// a "$ref" to a URL is a registration error, because validating a start
// request must never fetch anything.

// schemaURL is the name the schema is compiled under; it shows in messages
// about the schema itself.
const schemaURL = "longrun-input-schema.json"

func compileSchema(raw []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the InputSchema is not valid JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("the InputSchema: %w", err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("the InputSchema is not a valid JSON Schema: %w", err)
	}
	return s, nil
}

// noLoader refuses every external reference.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s: an InputSchema's $ref may only point inside the schema (use $defs)", url)
}

// FieldError is one rule of a kind's InputSchema that a start request's
// input breaks.
type FieldError struct {
	// Pointer is the JSON Pointer (RFC 6901) of the offending value in the
	// request body: "/input/email", "/input" for the input as a whole.
	Pointer string `json:"pointer"`
	// Detail is the rule broken, e.g. "got number, want string" or
	// "missing property 'name'".
	Detail string `json:"detail"`
}

// InputError is an input refused by its kind's InputSchema. It unwraps to an
// *Error with code EINVALID, so it is a 400 wherever it surfaces; Fields list
// each rule broken.
type InputError struct {
	Kind   string
	Fields []FieldError
}

// maxFieldErrors bounds how many broken rules one error lists.
const maxFieldErrors = 10

func (e *InputError) Error() string { return e.err().Error() }

// Unwrap makes an InputError a domain error with code EINVALID.
func (e *InputError) Unwrap() error { return e.err() }

func (e *InputError) err() *Error {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, fmt.Sprintf("at %s: %s", f.Pointer, f.Detail))
	}
	return Errorf(EINVALID, `"input" does not match the input schema of job %q: %s`, e.Kind, strings.Join(parts, "; "))
}

// ValidateInput checks input against the kind's InputSchema; a kind without
// one accepts any JSON. A violation is an *InputError (code EINVALID).
func (k *Kind) ValidateInput(input []byte) error {
	if k.schema == nil {
		return nil
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(input))
	if err != nil {
		return Errorf(EINVALID, `"input" is not valid JSON: %v`, err)
	}
	err = k.schema.Validate(v)
	var ve *jsonschema.ValidationError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &ve):
		return fmt.Errorf("validate input of job %q: %w", k.Name, err)
	}
	ie := &InputError{Kind: k.Name}
	leaves(ve.DetailedOutput(), func(u jsonschema.OutputUnit) {
		if len(ie.Fields) < maxFieldErrors {
			ie.Fields = append(ie.Fields, FieldError{Pointer: "/input" + u.InstanceLocation, Detail: u.Error.String()})
		}
	})
	return ie
}

// leaves calls fn for each innermost failure of out: the rules actually
// broken, not the "allOf failed" around them.
func leaves(out *jsonschema.OutputUnit, fn func(jsonschema.OutputUnit)) {
	if len(out.Errors) == 0 {
		if out.Error != nil {
			fn(*out)
		}
		return
	}
	for i := range out.Errors {
		leaves(&out.Errors[i], fn)
	}
}
