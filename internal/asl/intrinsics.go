package asl

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// An intrinsic function call, `States.Format('{} {}', $.a, States.UUID())`,
// is parsed once when the definition is loaded (so a malformed one is a
// validation problem) and evaluated against each input.

// maxIntrinsicDepth is Step Functions' limit on nested intrinsic calls.
const maxIntrinsicDepth = 10

// maxIntrinsicString bounds Base64Encode/Decode and Hash input, as AWS does.
const maxIntrinsicString = 10000

type intrinsic struct {
	name string
	args []intrinsicArg
	// format holds a States.Format literal template split at its `{}`
	// placeholders; escaped braces (`\{`, `\}`) are already plain text in
	// the parts, which is why the split happens at parse time.
	format []string
}

// intrinsicArg is one argument: exactly one of the fields is set.
type intrinsicArg struct {
	literal   any // string, json.Number, bool or nil (isLiteral tells nil apart)
	isLiteral bool
	path      *path
	call      *intrinsic
	raw       string // a string literal as written, for States.Format
}

type intrinsicSpec struct {
	min, max int // argument counts; max -1 = any
	eval     func(in *intrinsic, args []any) (any, error)
}

// intrinsics are the functions of the JSONPath query language.
var intrinsics = map[string]intrinsicSpec{
	"States.Format":         {1, -1, evalFormat},
	"States.StringToJson":   {1, 1, evalStringToJSON},
	"States.JsonToString":   {1, 1, evalJSONToString},
	"States.Array":          {0, -1, func(_ *intrinsic, a []any) (any, error) { return append([]any{}, a...), nil }},
	"States.ArrayPartition": {2, 2, evalArrayPartition},
	"States.ArrayContains":  {2, 2, evalArrayContains},
	"States.ArrayRange":     {3, 3, evalArrayRange},
	"States.ArrayGetItem":   {2, 2, evalArrayGetItem},
	"States.ArrayLength":    {1, 1, evalArrayLength},
	"States.ArrayUnique":    {1, 1, evalArrayUnique},
	"States.Base64Encode":   {1, 1, evalBase64Encode},
	"States.Base64Decode":   {1, 1, evalBase64Decode},
	"States.Hash":           {2, 2, evalHash},
	"States.JsonMerge":      {3, 3, evalJSONMerge},
	"States.MathRandom":     {2, 3, evalMathRandom},
	"States.MathAdd":        {2, 2, evalMathAdd},
	"States.StringSplit":    {2, 2, evalStringSplit},
	"States.UUID":           {0, 0, func(*intrinsic, []any) (any, error) { return uuid.NewString(), nil }},
}

func isIntrinsic(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "States.") }

// parseIntrinsic parses a whole intrinsic function call.
func parseIntrinsic(s string) (*intrinsic, error) {
	p := &intrinsicParser{src: s}
	p.skipSpace()
	call, err := p.call(1)
	if err != nil {
		return nil, fmt.Errorf("intrinsic function %q: %w", s, err)
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return nil, fmt.Errorf("intrinsic function %q: unexpected %q after the call", s, p.src[p.pos:])
	}
	return call, nil
}

type intrinsicParser struct {
	src string
	pos int
}

func (p *intrinsicParser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n') {
		p.pos++
	}
}

func (p *intrinsicParser) call(depth int) (*intrinsic, error) {
	if depth > maxIntrinsicDepth {
		return nil, fmt.Errorf("more than %d nested intrinsic functions", maxIntrinsicDepth)
	}
	open := strings.IndexByte(p.src[p.pos:], '(')
	if open < 0 {
		return nil, fmt.Errorf("missing ( after the function name")
	}
	name := strings.TrimSpace(p.src[p.pos : p.pos+open])
	sp, ok := intrinsics[name]
	if !ok {
		return nil, fmt.Errorf("unknown function %q", name)
	}
	p.pos += open + 1
	in := &intrinsic{name: name}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ')' {
		p.pos++
	} else {
		for {
			p.skipSpace()
			a, err := p.arg(depth)
			if err != nil {
				return nil, err
			}
			in.args = append(in.args, a)
			p.skipSpace()
			if p.pos >= len(p.src) {
				return nil, fmt.Errorf("missing ) closing %s", name)
			}
			c := p.src[p.pos]
			p.pos++
			if c == ')' {
				break
			}
			if c != ',' {
				return nil, fmt.Errorf("unexpected %q in the arguments of %s", c, name)
			}
		}
	}
	if len(in.args) < sp.min || (sp.max >= 0 && len(in.args) > sp.max) {
		return nil, fmt.Errorf("%s takes %s, not %d", name, arity(sp), len(in.args))
	}
	if err := checkLiteralArgs(in); err != nil {
		return nil, err
	}
	return in, nil
}

func arity(sp intrinsicSpec) string {
	switch {
	case sp.max < 0:
		return fmt.Sprintf("at least %d arguments", sp.min)
	case sp.min == sp.max:
		return fmt.Sprintf("%d arguments", sp.min)
	}
	return fmt.Sprintf("%d to %d arguments", sp.min, sp.max)
}

// checkLiteralArgs catches at load time what can be known then.
func checkLiteralArgs(in *intrinsic) error {
	switch in.name {
	case "States.Format":
		first := in.args[0]
		if first.isLiteral {
			if first.raw == "" && first.literal != "" {
				return fmt.Errorf("the first argument of States.Format must be a string")
			}
			in.format = splitFormat(first.raw)
			if len(in.format)-1 != len(in.args)-1 {
				return fmt.Errorf("States.Format has %d {} placeholders but %d values", len(in.format)-1, len(in.args)-1)
			}
		}
	case "States.JsonMerge":
		if a := in.args[2]; a.isLiteral && a.literal != false {
			return fmt.Errorf("the third argument of States.JsonMerge must be false: only shallow merging is supported")
		}
	case "States.Hash":
		if a := in.args[1]; a.isLiteral {
			if _, err := hashFor(a.literal); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *intrinsicParser) arg(depth int) (intrinsicArg, error) {
	if p.pos >= len(p.src) {
		return intrinsicArg{}, fmt.Errorf("missing argument")
	}
	rest := p.src[p.pos:]
	switch {
	case rest[0] == '\'':
		raw, val, err := p.stringLiteral()
		return intrinsicArg{literal: val, isLiteral: true, raw: raw}, err
	case rest[0] == '$':
		end := p.pathEnd()
		src := strings.TrimSpace(p.src[p.pos:end])
		p.pos = end
		pa, err := parsePath(src)
		if err != nil {
			return intrinsicArg{}, err
		}
		return intrinsicArg{path: pa}, nil
	case strings.HasPrefix(rest, "States."):
		c, err := p.call(depth + 1)
		return intrinsicArg{call: c}, err
	}
	end := p.pathEnd()
	tok := strings.TrimSpace(p.src[p.pos:end])
	p.pos = end
	switch tok {
	case "true":
		return intrinsicArg{literal: true, isLiteral: true}, nil
	case "false":
		return intrinsicArg{literal: false, isLiteral: true}, nil
	case "null":
		return intrinsicArg{literal: nil, isLiteral: true}, nil
	}
	if _, err := strconv.ParseFloat(tok, 64); err == nil {
		return intrinsicArg{literal: json.Number(tok), isLiteral: true}, nil
	}
	return intrinsicArg{}, fmt.Errorf("unexpected argument %q", tok)
}

// pathEnd finds where an unquoted argument ends: at a `,` or `)` outside
// brackets and quotes, so `$.a['x,y']` stays one path.
func (p *intrinsicParser) pathEnd() int {
	depth := 0
	var quote byte
	for i := p.pos; i < len(p.src); i++ {
		c := p.src[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '[' || c == '(':
			depth++
		case c == ']':
			depth--
		case c == ')' && depth > 0:
			depth--
		case (c == ',' || c == ')') && depth == 0:
			return i
		}
	}
	return len(p.src)
}

// stringLiteral reads '...' with the escapes \' \{ \} \\. It returns the
// text between the quotes as written (for States.Format) and its value.
func (p *intrinsicParser) stringLiteral() (raw, val string, err error) {
	var b strings.Builder
	start := p.pos + 1
	for i := start; i < len(p.src); i++ {
		c := p.src[i]
		switch c {
		case '\\':
			if i+1 >= len(p.src) {
				return "", "", fmt.Errorf("open escape at the end of a string")
			}
			switch n := p.src[i+1]; n {
			case '\'', '{', '}', '\\':
				b.WriteByte(n)
				i++
			default:
				return "", "", fmt.Errorf(`invalid escape \%c in a string: only \', \{, \} and \\ are allowed`, n)
			}
		case '\'':
			p.pos = i + 1
			return p.src[start:i], b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated string")
}

// splitFormat splits a States.Format template (as written, escapes intact)
// at its unescaped `{}` placeholders and resolves the escapes.
func splitFormat(raw string) []string {
	var parts []string
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		switch {
		case raw[i] == '\\' && i+1 < len(raw):
			b.WriteByte(raw[i+1])
			i++
		case raw[i] == '{' && i+1 < len(raw) && raw[i+1] == '}':
			parts = append(parts, b.String())
			b.Reset()
			i++
		default:
			b.WriteByte(raw[i])
		}
	}
	return append(parts, b.String())
}

// eval evaluates the call against a state's data. Failures are
// States.IntrinsicFailure (or States.Runtime for an argument path that
// selects nothing, as for any path of a payload template).
func (in *intrinsic) eval(input any, env *call) (any, error) {
	args := make([]any, len(in.args))
	for i, a := range in.args {
		switch {
		case a.call != nil:
			v, err := a.call.eval(input, env)
			if err != nil {
				return nil, err
			}
			args[i] = v
		case a.path != nil:
			v, err := a.path.get(input, env)
			if err != nil {
				return nil, &stateError{ErrRuntime, fmt.Sprintf("The JSONPath '%s' specified for the argument %d of %s could not be found in the input", a.path.src, i+1, in.name)}
			}
			args[i] = v
		default:
			args[i] = a.literal
		}
	}
	v, err := intrinsics[in.name].eval(in, args)
	if err != nil {
		return nil, &stateError{ErrIntrinsicFailure, fmt.Sprintf("%s: %v", in.name, err)}
	}
	return v, nil
}

func evalFormat(in *intrinsic, args []any) (any, error) {
	parts := in.format
	if parts == nil {
		tmpl, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("the template must be a string, not a %s", jsonType(args[0]))
		}
		parts = strings.Split(tmpl, "{}")
	}
	if len(parts)-1 != len(args)-1 {
		return nil, fmt.Errorf("the template has %d {} placeholders but there are %d values", len(parts)-1, len(args)-1)
	}
	var b strings.Builder
	b.WriteString(parts[0])
	for i, v := range args[1:] {
		switch v := v.(type) {
		case string:
			b.WriteString(v)
		case map[string]any, []any:
			return nil, fmt.Errorf("value %d is a JSON %s; only strings, numbers, booleans and null can be formatted", i+1, jsonType(v))
		default:
			b.Write(encodeJSON(v))
		}
		b.WriteString(parts[i+1])
	}
	return b.String(), nil
}

func evalStringToJSON(_ *intrinsic, a []any) (any, error) {
	s, ok := a[0].(string)
	if !ok {
		return nil, fmt.Errorf("the argument must be a string, not a %s", jsonType(a[0]))
	}
	if s == "" {
		return nil, nil // Step Functions answers null for the empty string
	}
	v, err := decodeJSON([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("the argument is not JSON text: %v", err)
	}
	return v, nil
}

func evalJSONToString(_ *intrinsic, a []any) (any, error) { return string(encodeJSON(a[0])), nil }

func evalArrayPartition(_ *intrinsic, a []any) (any, error) {
	arr, err := arrayArg(a[0], 1)
	if err != nil {
		return nil, err
	}
	size, err := intArg(a[1], 2)
	if err != nil {
		return nil, err
	}
	if size <= 0 {
		return nil, fmt.Errorf("the chunk size must be a positive integer, not %d", size)
	}
	out := []any{}
	for i := 0; i < len(arr); i += int(size) {
		end := min(i+int(size), len(arr))
		out = append(out, append([]any{}, arr[i:end]...))
	}
	return out, nil
}

func evalArrayContains(_ *intrinsic, a []any) (any, error) {
	arr, err := arrayArg(a[0], 1)
	if err != nil {
		return nil, err
	}
	for _, v := range arr {
		if jsonEqual(v, a[1]) {
			return true, nil
		}
	}
	return false, nil
}

const maxArrayRange = 1000

func evalArrayRange(_ *intrinsic, a []any) (any, error) {
	var n [3]int64
	for i := range n {
		v, err := intArg(a[i], i+1)
		if err != nil {
			return nil, err
		}
		n[i] = v
	}
	start, end, step := n[0], n[1], n[2]
	if step == 0 {
		return nil, fmt.Errorf("the step must not be 0")
	}
	out := []any{}
	for v := start; (step > 0 && v <= end) || (step < 0 && v >= end); v += step {
		if len(out) == maxArrayRange {
			return nil, fmt.Errorf("the range has more than %d elements", maxArrayRange)
		}
		out = append(out, json.Number(strconv.FormatInt(v, 10)))
	}
	return out, nil
}

func evalArrayGetItem(_ *intrinsic, a []any) (any, error) {
	arr, err := arrayArg(a[0], 1)
	if err != nil {
		return nil, err
	}
	i, err := intArg(a[1], 2)
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= int64(len(arr)) {
		return nil, fmt.Errorf("index %d is out of range (length %d)", i, len(arr))
	}
	return arr[i], nil
}

func evalArrayLength(_ *intrinsic, a []any) (any, error) {
	arr, err := arrayArg(a[0], 1)
	if err != nil {
		return nil, err
	}
	return json.Number(strconv.Itoa(len(arr))), nil
}

func evalArrayUnique(_ *intrinsic, a []any) (any, error) {
	arr, err := arrayArg(a[0], 1)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, v := range arr {
		dup := false
		for _, u := range out {
			if jsonEqual(u, v) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out, nil
}

func evalBase64Encode(_ *intrinsic, a []any) (any, error) {
	s, err := stringArg(a[0], 1)
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.EncodeToString([]byte(s)), nil
}

func evalBase64Decode(_ *intrinsic, a []any) (any, error) {
	s, err := stringArg(a[0], 1)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("the argument is not Base64: %v", err)
	}
	return string(b), nil
}

func hashFor(alg any) (hash.Hash, error) {
	switch alg {
	case "MD5":
		return md5.New(), nil
	case "SHA-1":
		return sha1.New(), nil
	case "SHA-256":
		return sha256.New(), nil
	case "SHA-384":
		return sha512.New384(), nil
	case "SHA-512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("the algorithm %v is not one of MD5, SHA-1, SHA-256, SHA-384, SHA-512", alg)
}

func evalHash(_ *intrinsic, a []any) (any, error) {
	data, ok := a[0].(string)
	if !ok {
		data = string(encodeJSON(a[0]))
	}
	if len(data) > maxIntrinsicString {
		return nil, fmt.Errorf("the data is longer than %d characters", maxIntrinsicString)
	}
	h, err := hashFor(a[1])
	if err != nil {
		return nil, err
	}
	h.Write([]byte(data))
	return hex.EncodeToString(h.Sum(nil)), nil
}

func evalJSONMerge(_ *intrinsic, a []any) (any, error) {
	left, ok1 := a[0].(map[string]any)
	right, ok2 := a[1].(map[string]any)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("both values to merge must be objects, not %s and %s", jsonType(a[0]), jsonType(a[1]))
	}
	if a[2] != false {
		return nil, fmt.Errorf("the third argument must be false: only shallow merging is supported")
	}
	out := make(map[string]any, len(left)+len(right))
	for k, v := range left {
		out[k] = v
	}
	for k, v := range right {
		out[k] = v
	}
	return out, nil
}

func evalMathRandom(_ *intrinsic, a []any) (any, error) {
	start, err := intArg(a[0], 1)
	if err != nil {
		return nil, err
	}
	end, err := intArg(a[1], 2)
	if err != nil {
		return nil, err
	}
	if start >= end {
		return nil, fmt.Errorf("the start (%d) must be less than the end (%d)", start, end)
	}
	var n int64
	if len(a) == 3 {
		seed, err := intArg(a[2], 3)
		if err != nil {
			return nil, err
		}
		n = rand.New(rand.NewPCG(uint64(seed), 0)).Int64N(end - start)
	} else {
		n = rand.Int64N(end - start)
	}
	return json.Number(strconv.FormatInt(start+n, 10)), nil
}

func evalMathAdd(_ *intrinsic, a []any) (any, error) {
	var sum int64
	for i, v := range a {
		n, err := intArg(v, i+1)
		if err != nil {
			return nil, err
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			return nil, fmt.Errorf("argument %d (%d) is outside the 32-bit integer range", i+1, n)
		}
		sum += n
	}
	return json.Number(strconv.FormatInt(sum, 10)), nil
}

// evalStringSplit splits at any of the splitter's characters and drops
// empty pieces ("This.is+a,test=string" with ".+,=" gives five words).
func evalStringSplit(_ *intrinsic, a []any) (any, error) {
	s, err := stringArg(a[0], 1)
	if err != nil {
		return nil, err
	}
	sep, err := stringArg(a[1], 2)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(sep, r) }) {
		out = append(out, f)
	}
	return out, nil
}

func arrayArg(v any, n int) ([]any, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("argument %d must be an array, not a %s", n, jsonType(v))
	}
	return arr, nil
}

func stringArg(v any, n int) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("argument %d must be a string, not a %s", n, jsonType(v))
	}
	if len(s) > maxIntrinsicString {
		return "", fmt.Errorf("argument %d is longer than %d characters", n, maxIntrinsicString)
	}
	return s, nil
}

// intArg reads an integer argument; like Step Functions it rounds a
// non-integer number to the nearest integer, halves toward positive
// infinity (Java's Math.round: 1.5 → 2, -1.5 → -1).
func intArg(v any, n int) (int64, error) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("argument %d must be a number, not a %s", n, jsonType(v))
	}
	if i, err := num.Int64(); err == nil {
		return i, nil
	}
	f, err := num.Float64()
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("argument %d (%s) is not a usable integer", n, num)
	}
	return int64(math.Floor(f + 0.5)), nil
}

// jsonEqual compares JSON values; numbers compare by value (1 == 1.0).
func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case json.Number:
		b, ok := b.(json.Number)
		if !ok {
			return false
		}
		return compareNumbers(a, b) == 0
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !jsonEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}
