package asl

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"

	"github.com/google/uuid"
	jsonata "github.com/xiatechs/jsonata-go"
	"github.com/xiatechs/jsonata-go/jtypes"
)

// JSONata states (QueryLanguage "JSONata", at the top or per state):
// https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html
//
// Expressions are strings written `{% ... %}` in the fields that accept
// them (Arguments, Output, Assign, Items, ItemSelector, Condition, Seconds,
// Timestamp, TimeoutSeconds, HeartbeatSeconds, MaxConcurrency,
// ToleratedFailureCount/Percentage, Error, Cause), anywhere inside the JSON
// of Arguments, Output, Assign and ItemSelector. They see $states (input,
// result, errorOutput, context) and the workflow variables as $name.
//
// The evaluator is github.com/xiatechs/jsonata-go, the maintained Go port
// (of JSONata 1.8; the blues original it forks is at 1.5). Where it and the
// reference implementation (the jsonata npm package at 2.0.6, the version
// Step Functions runs) differ, the
// reference decides: jsonata_test.go runs the same expressions through
// both, and every known difference is a case there.

// QueryLanguage values.
const (
	queryJSONPath = "JSONPath"
	queryJSONata  = "JSONata"
)

// ErrQueryEvaluation is a JSONata expression that failed or gave no value
// where one is needed.
const ErrQueryEvaluation = "States.QueryEvaluationError"

// evalCall finds a call of $eval, the one JSONata 2.0.6 function Step
// Functions leaves out.
var evalCall = regexp.MustCompile(`\$eval\s*\(`)

// jexpr is one compiled `{% %}` expression.
type jexpr struct {
	src  string
	expr *jsonata.Expr
}

// jtemplate is a JSON value whose strings may be JSONata expressions.
type jtemplate struct {
	expr *jexpr
	keys []string // object, in sorted order
	obj  map[string]*jtemplate
	arr  []*jtemplate
	lit  any
	kind byte   // 'e' expression, 'o' object, 'a' array, 'l' literal
	at   string // the field, as validation names it: "Output.items[0]" (at run time "Output/items[0]", as Step Functions does)
}

// jsonataString reports whether s is a whole `{% ... %}` expression and
// returns its body.
func jsonataString(s string) (string, bool) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{%") && strings.HasSuffix(t, "%}") && len(t) >= 4 {
		return strings.TrimSpace(t[2 : len(t)-2]), true
	}
	return "", false
}

func compileJExpr(body string) (*jexpr, error) {
	if evalCall.MatchString(body) {
		return nil, fmt.Errorf("the JSONata expression %q calls $eval, which Step Functions does not offer: use $parse", body)
	}
	e, err := jsonata.Compile(body)
	if err != nil {
		return nil, fmt.Errorf("the JSONata expression %q does not parse: %v", body, err)
	}
	return &jexpr{src: body, expr: e}, nil
}

// compileJTemplate compiles a field's JSON value, reporting each bad
// expression with its position.
func compileJTemplate(raw any, at string, problem func(field, msg string)) *jtemplate {
	switch v := raw.(type) {
	case string:
		if body, ok := jsonataString(v); ok {
			e, err := compileJExpr(body)
			if err != nil {
				problem(at, err.Error())
				return &jtemplate{kind: 'l', lit: v}
			}
			return &jtemplate{kind: 'e', expr: e, at: at}
		}
	case map[string]any:
		t := &jtemplate{kind: 'o', obj: map[string]*jtemplate{}}
		for k := range v {
			t.keys = append(t.keys, k)
		}
		sort.Strings(t.keys)
		for _, k := range t.keys {
			if strings.HasSuffix(k, ".$") {
				problem(at+"."+k, "a field ending in .$ belongs to JSONPath; in JSONata write the value as \"{% expression %}\"")
			}
			t.obj[k] = compileJTemplate(v[k], at+"."+k, problem)
		}
		return t
	case []any:
		t := &jtemplate{kind: 'a'}
		for i, x := range v {
			t.arr = append(t.arr, compileJTemplate(x, fmt.Sprintf("%s[%d]", at, i), problem))
		}
		return t
	}
	return &jtemplate{kind: 'l', lit: raw}
}

// jenv is what expressions of one evaluation see.
type jenv struct {
	states map[string]any // input, result, errorOutput, context (as JSONata values)
	vars   map[string]any
}

// newJEnv binds $states.input and .context of the call; result and
// errorOutput are added where they exist.
func newJEnv(cl *call) *jenv {
	env := &jenv{states: map[string]any{"input": toJ(cl.input), "context": toJ(cl.ctx())}, vars: map[string]any{}}
	for k, v := range cl.vars() {
		env.vars[k] = toJ(v)
	}
	return env
}

func (env *jenv) with(key string, v any) *jenv {
	states := make(map[string]any, len(env.states)+1)
	for k, x := range env.states {
		states[k] = x
	}
	states[key] = toJ(v)
	return &jenv{states: states, vars: env.vars}
}

// eval evaluates the template. An expression that fails, or gives no
// value (undefined) for its field, wherever the field is, is
// States.QueryEvaluationError naming the expression and the field, as
// Step Functions reports it.
func (t *jtemplate) eval(env *jenv) (any, error) {
	switch t.kind {
	case 'e':
		v, undefined, err := t.expr.eval(env)
		if err != nil {
			return nil, err
		}
		if undefined {
			return nil, &stateError{ErrQueryEvaluation, fmt.Sprintf("The JSONata expression '%s' specified for the field '%s' returned nothing (undefined).", t.expr.src, strings.ReplaceAll(t.at, ".", "/"))}
		}
		return v, nil
	case 'o':
		out := make(map[string]any, len(t.obj))
		for _, k := range t.keys {
			v, err := t.obj[k].eval(env)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case 'a':
		out := make([]any, 0, len(t.arr))
		for _, x := range t.arr {
			v, err := x.eval(env)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return t.lit, nil
}

// eval runs the expression on a copy of the compiled one, so concurrent
// evaluations with different variables do not share a registry.
func (x *jexpr) eval(env *jenv) (any, bool, error) {
	e := *x.expr
	if err := e.RegisterExts(awsFunctions); err != nil {
		return nil, false, fmt.Errorf("asl: register JSONata functions: %w", err)
	}
	vars := make(map[string]any, len(env.vars)+1)
	for k, v := range env.vars {
		vars[k] = v
	}
	vars["states"] = env.states
	if err := e.RegisterVars(vars); err != nil {
		return nil, false, &stateError{ErrQueryEvaluation, fmt.Sprintf("The JSONata expression '%s' cannot see the variables: %v", x.src, err)}
	}
	v, err := e.Eval(env.states["input"])
	if errors.Is(err, jsonata.ErrUndefined) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, &stateError{ErrQueryEvaluation, fmt.Sprintf("An error occurred while evaluating the JSONata expression '%s': %v", x.src, err)}
	}
	out, ferr := fromJ(v)
	if ferr != nil {
		return nil, false, &stateError{ErrQueryEvaluation, fmt.Sprintf("The JSONata expression '%s' returned a value that is not JSON: %v", x.src, ferr)}
	}
	return out, false, nil
}

// toJ turns asl's JSON values (json.Number) into the evaluator's
// (float64), as JSONata numbers are doubles.
func toJ(v any) any {
	b := encodeJSON(v)
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil
	}
	return out
}

func fromJ(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeJSON(b)
}

// awsFunctions are the functions Step Functions adds to JSONata.
// https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html#jsonata-functions
var awsFunctions = map[string]jsonata.Extension{
	"partition": {Func: func(arr []any, size float64) ([]any, error) {
		if size < 1 || size != math.Trunc(size) {
			return nil, fmt.Errorf("$partition: the size must be a positive integer, not %v", size)
		}
		out := []any{}
		n := int(size)
		for i := 0; i < len(arr); i += n {
			out = append(out, append([]any{}, arr[i:min(i+n, len(arr))]...))
		}
		return out, nil
	}},
	"range": {Func: func(start, end, step float64) ([]any, error) {
		if step == 0 {
			return nil, errors.New("$range: the step must not be 0")
		}
		out := []any{}
		for v := start; (step > 0 && v <= end) || (step < 0 && v >= end); v += step {
			if len(out) == maxArrayRange {
				return nil, fmt.Errorf("$range: more than %d elements", maxArrayRange)
			}
			out = append(out, v)
		}
		return out, nil
	}},
	"hash": {Func: func(v any, alg string) (string, error) {
		s, ok := v.(string)
		if !ok {
			b, err := json.Marshal(v)
			if err != nil {
				return "", err
			}
			s = string(b)
		}
		var h hash.Hash
		switch alg {
		case "MD5":
			h = md5.New()
		case "SHA-1":
			h = sha1.New()
		case "SHA-256":
			h = sha256.New()
		case "SHA-384":
			h = sha512.New384()
		case "SHA-512":
			h = sha512.New()
		default:
			return "", fmt.Errorf("$hash: the algorithm %q is not one of MD5, SHA-1, SHA-256, SHA-384, SHA-512", alg)
		}
		h.Write([]byte(s))
		return hex.EncodeToString(h.Sum(nil)), nil
	}},
	"random": {Func: func(seed jtypes.OptionalFloat64) float64 {
		if seed.IsSet() {
			return rand.New(rand.NewPCG(uint64(int64(seed.Float64)), 0)).Float64()
		}
		return rand.Float64()
	}},
	"uuid": {Func: func() string { return uuid.NewString() }},
	"parse": {Func: func(s string) (any, error) {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("$parse: %v", err)
		}
		return v, nil
	}},
}
