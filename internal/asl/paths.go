package asl

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/theory/jsonpath"
	"github.com/theory/jsonpath/spec"
)

// JSON values are handled as encoding/json decodes them with UseNumber:
// map[string]any, []any, string, json.Number, bool and nil. json.Number keeps
// numbers exactly as written, so 12345678901234567890 survives a Pass state.
//
// Paths use github.com/theory/jsonpath, an RFC 9535 implementation: it is
// maintained, has no dependencies, accepts json.Number, and exposes the
// parsed query, so a singular query (only name and index selectors) is
// recognised as a Reference Path without a second parser. Step Functions'
// own JSONPath is Jayway's; the common subset (dot and bracket names,
// indexes, wildcards, slices, `..`, filters) behaves the same.

// path is a compiled Path or Reference Path. A path starting with `$$`
// selects from the context object instead of the state's input.
type path struct {
	src      string
	context  bool
	variable string // for `$name...`: the workflow variable it starts from
	query    *jsonpath.Path
	singular bool
	ref      []any // for singular paths: string names and int indexes
}

// parsePath compiles a Path (`$`, `$.a.b[0]`, `$..x`, `$.a[?@.b > 1]`, or
// the same after `$$`).
func parsePath(s string) (*path, error) {
	p := &path{src: s}
	q := s
	if strings.HasPrefix(s, "$$") {
		p.context = true
		q = s[1:]
	} else if name, rest, ok := cutVariable(s); ok {
		p.variable = name
		q = "$" + rest
	}
	if !strings.HasPrefix(q, "$") {
		return nil, fmt.Errorf("%q is not a path: it must start with $", s)
	}
	jp, err := jsonpath.Parse(bracketNames(q))
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid JSONPath: %w", s, err)
	}
	p.query = jp
	if jp.Query().Singular() != nil {
		p.singular = true
		for _, seg := range jp.Query().Segments() {
			switch sel := seg.Selectors()[0].(type) {
			case spec.Name:
				p.ref = append(p.ref, string(sel))
			case spec.Index:
				p.ref = append(p.ref, int(sel))
			}
		}
	}
	return p, nil
}

// bracketNames rewrites dot-notation names that RFC 9535's shorthand does
// not allow but Jayway (and so Step Functions) does, such as the spec's
// own `$.error-info`, into bracket notation: `$['error-info']`. Brackets
// (and the filters inside them) are left as written.
func bracketNames(q string) string {
	var b strings.Builder
	depth := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(q) {
				b.WriteByte(c)
				i++
				c = q[i]
			} else if c == quote {
				quote = 0
			}
		case depth > 0 && (c == '\'' || c == '"'):
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == '.' && depth == 0 && i+1 < len(q) && q[i+1] != '.' && q[i+1] != '*' && q[i+1] != '[':
			end := i + 1
			for end < len(q) && q[end] != '.' && q[end] != '[' {
				end++
			}
			name := q[i+1 : end]
			if !shorthand(name) {
				b.WriteString("['" + strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), "'", `\'`) + "']")
				i = end - 1
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// shorthand reports whether name is an RFC 9535 member-name-shorthand.
func shorthand(name string) bool {
	if name == "" {
		return true // let the parser report it
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= 0x80:
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// readsInput reports whether a `$$` path may read $$.Execution.Input:
// any path but a reference path into another part of the context object.
func (p *path) readsInput() bool {
	if !p.singular || len(p.ref) < 2 {
		return true
	}
	return p.ref[0] == "Execution" && p.ref[1] == "Input"
}

// parseRefPath compiles a Reference Path: a path that identifies exactly one
// node (names and indexes only, no `..`, wildcards, slices or filters).
func parseRefPath(s string) (*path, error) {
	p, err := parsePath(s)
	if err != nil {
		return nil, err
	}
	if !p.singular {
		return nil, fmt.Errorf("%q is not a reference path: only names and indexes may follow $", s)
	}
	return p, nil
}

// errNoMatch is a path selecting nothing; callers name the States.* error
// it becomes where it happened.
var errNoMatch = errors.New("no match")

// get evaluates p. A singular path gives the one node it selects (or
// errNoMatch); any other path gives the array of all the nodes it selects,
// which may be empty, as Jayway does for indefinite paths.
func (p *path) get(input any, env *call) (any, error) {
	doc := input
	switch {
	case p.context:
		doc = env.ctxFor(p)
	case p.variable != "":
		v, ok := env.variable(p.variable)
		if !ok {
			return nil, errNoMatch
		}
		doc = v
	}
	if p.singular {
		return getRef(doc, p.ref)
	}
	nodes := p.query.Select(doc)
	out := make([]any, len(nodes))
	copy(out, nodes)
	return out, nil
}

// getRef walks a reference path. It is faster than the query engine and
// exact about what is missing.
func getRef(doc any, ref []any) (any, error) {
	cur := doc
	for _, r := range ref {
		switch r := r.(type) {
		case string:
			obj, ok := cur.(map[string]any)
			if !ok {
				return nil, errNoMatch
			}
			v, ok := obj[r]
			if !ok {
				return nil, errNoMatch
			}
			cur = v
		case int:
			arr, ok := cur.([]any)
			if !ok {
				return nil, errNoMatch
			}
			i := r
			if i < 0 {
				i += len(arr)
			}
			if i < 0 || i >= len(arr) {
				return nil, errNoMatch
			}
			cur = arr[i]
		}
	}
	return cur, nil
}

// setRef returns doc with v placed at the reference path ref. It copies
// every object and array on the way instead of modifying doc, so v may be
// (part of) doc itself, as with a Pass state's `"ResultPath": "$.copy"`.
// Missing objects on the way are created; an existing node of the wrong
// type, or an index out of range, is an error.
func setRef(doc any, ref []any, v any) (any, error) {
	if len(ref) == 0 {
		return v, nil
	}
	switch r := ref[0].(type) {
	case string:
		var obj map[string]any
		switch d := doc.(type) {
		case map[string]any:
			obj = make(map[string]any, len(d)+1)
			for k, x := range d {
				obj[k] = x
			}
		case nil:
			obj = map[string]any{}
		default:
			return nil, fmt.Errorf("cannot set field %q of a %s", r, jsonType(doc))
		}
		child, err := setRef(obj[r], ref[1:], v)
		if err != nil {
			return nil, err
		}
		obj[r] = child
		return obj, nil
	case int:
		d, ok := doc.([]any)
		if !ok {
			return nil, fmt.Errorf("cannot set index %d of a %s", r, jsonType(doc))
		}
		i := r
		if i < 0 {
			i += len(d)
		}
		if i < 0 || i >= len(d) {
			return nil, fmt.Errorf("index %d is out of range (length %d)", r, len(d))
		}
		arr := make([]any, len(d))
		copy(arr, d)
		child, err := setRef(arr[i], ref[1:], v)
		if err != nil {
			return nil, err
		}
		arr[i] = child
		return arr, nil
	}
	return nil, fmt.Errorf("bad reference path segment %v", ref[0])
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number, float64, int, int64:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// inputFilter is an InputPath or OutputPath: nil keeps everything, null
// keeps nothing (the effective value is {}).
type inputFilter struct {
	null bool
	p    *path
}

func (f *inputFilter) apply(v any, env *call, field string) (any, error) {
	if f == nil {
		return v, nil
	}
	if f.null {
		return map[string]any{}, nil
	}
	out, err := f.p.get(v, env)
	if err != nil {
		return nil, &stateError{ErrRuntime, fmt.Sprintf("Invalid path '%s' in %s: the path selects nothing in the state's data", f.p.src, field)}
	}
	return out, nil
}

// resultPath is a ResultPath: nil is "$" (the result replaces the input),
// discard is null (the input passes through unchanged).
type resultPath struct {
	discard bool
	p       *path
}

func (r *resultPath) apply(input, result any) (any, error) {
	if r == nil {
		return result, nil
	}
	if r.discard {
		return input, nil
	}
	out, err := setRef(input, r.p.ref, result)
	if err != nil {
		return nil, &stateError{ErrResultPathMatch, fmt.Sprintf("Unable to apply ResultPath '%s' to the state's input: %v", r.p.src, err)}
	}
	return out, nil
}
