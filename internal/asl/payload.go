package asl

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// payload is a compiled Payload Template (Parameters, ResultSelector): JSON
// whose object fields named "key.$" take their value from a path into the
// state's data, a `$$` path into the context object, or an intrinsic
// function, and are renamed "key".
type payload struct {
	literal any // when the template holds no "key.$" field anywhere
	static  bool
	fields  []payloadField // object
	items   []*payload     // array
	isArray bool
}

type payloadField struct {
	key   string
	value *payload   // for a plain field
	path  *path      // for "key.$": a path ...
	call  *intrinsic // ... or an intrinsic function
	src   string     // the "key.$" value as written, for messages
}

// compilePayload compiles raw, reporting each malformed "key.$" field to
// problem with its position ("Parameters.Payload.id.$").
func compilePayload(raw any, at string, problem func(field, msg string)) *payload {
	switch v := raw.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		p := &payload{static: true}
		for _, k := range keys {
			field := at + "." + k
			if name, ok := strings.CutSuffix(k, ".$"); ok {
				s, isStr := v[k].(string)
				f := payloadField{key: name, src: s}
				switch {
				case !isStr:
					problem(field, "the value of a field ending in .$ must be a path or an intrinsic function (a string)")
				case strings.HasPrefix(s, "$"):
					pa, err := parsePath(s)
					if err != nil {
						problem(field, err.Error())
					}
					f.path = pa
				case isIntrinsic(s):
					call, err := parseIntrinsic(s)
					if err != nil {
						problem(field, err.Error())
					}
					f.call = call
				default:
					problem(field, fmt.Sprintf("%q is neither a path (starting with $ or $$) nor an intrinsic function (States.…)", s))
				}
				p.static = false
				p.fields = append(p.fields, f)
				continue
			}
			sub := compilePayload(v[k], field, problem)
			p.static = p.static && sub.static
			p.fields = append(p.fields, payloadField{key: k, value: sub})
		}
		if p.static {
			return &payload{literal: v, static: true}
		}
		return p
	case []any:
		p := &payload{static: true, isArray: true}
		for i, x := range v {
			sub := compilePayload(x, fmt.Sprintf("%s[%d]", at, i), problem)
			p.static = p.static && sub.static
			p.items = append(p.items, sub)
		}
		if p.static {
			return &payload{literal: v, static: true}
		}
		return p
	}
	return &payload{literal: raw, static: true}
}

// eval builds the payload for one input. The values of a static template
// are shared between calls: callers never modify what eval returns (setRef
// copies), so that is safe and keeps Parameters without paths cheap.
func (p *payload) eval(input any, env *call) (any, error) {
	if p.static {
		return p.literal, nil
	}
	if p.isArray {
		out := make([]any, len(p.items))
		for i, it := range p.items {
			v, err := it.eval(input, env)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	out := make(map[string]any, len(p.fields))
	for _, f := range p.fields {
		var v any
		var err error
		switch {
		case f.value != nil:
			v, err = f.value.eval(input, env)
		case f.path != nil:
			v, err = f.path.get(input, env)
			if err != nil {
				// Step Functions names this States.Runtime, which no
				// Catch can handle (States.ALL does not match it).
				err = &stateError{ErrRuntime, fmt.Sprintf("The JSONPath '%s' specified for the field '%s.$' could not be found in the input '%s'", f.src, f.key, truncate(encodeJSON(input)))}
			}
		case f.call != nil:
			v, err = f.call.eval(input, env)
		}
		if err != nil {
			return nil, err
		}
		out[f.key] = v
	}
	return out, nil
}

// truncate keeps error causes readable when the data is large.
func truncate(b json.RawMessage) string {
	const limit = 256
	if len(b) <= limit {
		return string(b)
	}
	return string(b[:limit]) + "…"
}
