package asl

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
)

// choiceState picks the Next of the first rule that matches its input, or
// Default; with neither, the execution fails with States.NoChoiceMatched.
type choiceState struct {
	base
	choices []*choiceRule
	def     string
}

// choiceRule is a boolean expression (And, Or, Not) or a comparison of
// Variable with a literal or, for the ...Path operators, another path.
type choiceRule struct {
	and, or   []*choiceRule
	not       *choiceRule
	variable  *path
	op        string // the operator without its Path suffix
	value     any
	valuePath *path
	match     []string // StringMatches pattern split at unescaped '*'
	next      string
	assign    *assignment // top-level rules only
	condition *jexpr      // JSONata
	output    *jtemplate  // JSONata
}

// operand says what kind of literal an operator compares with.
type operand int

const (
	opString operand = iota
	opNumber
	opBoolean
	opTimestamp
)

var comparisons = map[string]operand{
	"StringEquals": opString, "StringLessThan": opString, "StringGreaterThan": opString,
	"StringLessThanEquals": opString, "StringGreaterThanEquals": opString, "StringMatches": opString,
	"NumericEquals": opNumber, "NumericLessThan": opNumber, "NumericGreaterThan": opNumber,
	"NumericLessThanEquals": opNumber, "NumericGreaterThanEquals": opNumber,
	"BooleanEquals":   opBoolean,
	"TimestampEquals": opTimestamp, "TimestampLessThan": opTimestamp, "TimestampGreaterThan": opTimestamp,
	"TimestampLessThanEquals": opTimestamp, "TimestampGreaterThanEquals": opTimestamp,
	"IsNull": opBoolean, "IsPresent": opBoolean, "IsNumeric": opBoolean, "IsString": opBoolean,
	"IsBoolean": opBoolean, "IsTimestamp": opBoolean,
}

func parseChoice(f *fields, b base) *choiceState {
	s := &choiceState{base: b}
	s.inputPath = f.filter("InputPath")
	s.outputPath = f.filter("OutputPath")
	s.assign = f.assign("Assign")
	if f.jsonata {
		s.output = f.jtmpl("Output")
	}
	for _, k := range []string{"Next", "End"} {
		if f.has(k) {
			f.get(k)
			f.problem(k, "a Choice state cannot have %s; its rules and Default choose the next state", k)
		}
	}
	s.def, _ = f.str("Default")
	arr, ok := f.array("Choices")
	switch {
	case !ok && !f.has("Choices"):
		f.problem("Choices", "is required")
	case ok && len(arr) == 0:
		f.problem("Choices", "must have at least one rule")
	}
	for i, raw := range arr {
		at := fmt.Sprintf("Choices[%d]", i)
		r := parseRule(f.ck, f.state, at, raw, true)
		if r == nil {
			continue
		}
		s.choices = append(s.choices, r)
		s.addTarget(at+".Next", r.next)
	}
	s.addTarget("Default", s.def)
	return s
}

func parseRule(ck *checker, stateName, at string, raw any, top bool) *choiceRule {
	obj, ok := raw.(map[string]any)
	if !ok {
		ck.add(stateName, at, "a Choice rule must be an object")
		return nil
	}
	f := newFields(ck, stateName, at+".", obj)
	defer f.finish()
	f.str("Comment")
	r := &choiceRule{}
	if top {
		r.next = f.required("Next")
		r.assign = f.assign("Assign")
	} else if f.has("Next") {
		f.get("Next")
		f.problem("Next", "only top-level Choice rules have Next")
	}
	if f.jsonata {
		if !top {
			f.problem("", "a JSONata Choice has no nested rules: write the whole test in Condition")
			return nil
		}
		r.output = f.jtmpl("Output")
		src, ok := f.str("Condition")
		if !ok && !f.has("Condition") {
			f.problem("Condition", "is required in a JSONata Choice rule")
			return r
		}
		body, isExpr := jsonataString(src)
		if !isExpr {
			f.problem("Condition", "must be a {%% expression %%}, not %q", src)
			return r
		}
		e, err := compileJExpr(body)
		if err != nil {
			f.problem("Condition", "%v", err)
		}
		r.condition = e
		return r
	}
	var ops []string
	for k := range obj {
		if _, ok := comparisons[strings.TrimSuffix(k, "Path")]; ok {
			ops = append(ops, k)
		}
		if k == "And" || k == "Or" || k == "Not" {
			ops = append(ops, k)
		}
	}
	sort.Strings(ops)
	if len(ops) == 0 && f.has("Condition") {
		// The real defect is the query language, not a missing operator.
		f.get("Condition")
		f.problem("Condition", "Condition belongs to JSONata: set \"QueryLanguage\": \"JSONata\" on the state (or the state machine), or write the rule with Variable and a comparison")
		return nil
	}
	if len(ops) != 1 {
		f.problem("", "a Choice rule needs exactly one of And, Or, Not or a comparison operator (found %d: %s)", len(ops), strings.Join(ops, ", "))
		f.get("Variable")
		for _, k := range ops {
			f.get(k)
		}
		return nil
	}
	op := ops[0]
	switch op {
	case "And", "Or":
		arr, _ := f.array(op)
		if len(arr) == 0 && f.has(op) {
			f.problem(op, "must have at least one rule")
		}
		var rules []*choiceRule
		for i, x := range arr {
			if sub := parseRule(ck, stateName, fmt.Sprintf("%s%s[%d]", f.at, op, i), x, false); sub != nil {
				rules = append(rules, sub)
			}
		}
		if op == "And" {
			r.and = rules
		} else {
			r.or = rules
		}
		if f.has("Variable") {
			f.get("Variable")
			f.problem("Variable", "a rule with %s has no Variable", op)
		}
		return r
	case "Not":
		v, _ := f.get("Not")
		r.not = parseRule(ck, stateName, f.at+"Not", v, false)
		if f.has("Variable") {
			f.get("Variable")
			f.problem("Variable", "a rule with Not has no Variable")
		}
		return r
	}
	if !f.has("Variable") {
		f.problem("Variable", "is required with %s", op)
	}
	// A Reference Path, as asl-validator requires: what a comparison of
	// the array an indefinite path selects would mean is not specified.
	r.variable = f.path("Variable", true, true)
	base, isPath := strings.CutSuffix(op, "Path")
	if _, known := comparisons[op]; known {
		base, isPath = op, false // "IsPresent" etc. do not end in Path; guard anyway
	}
	r.op = base
	switch {
	case isPath && (base == "StringMatches" || strings.HasPrefix(base, "Is")):
		f.get(op)
		f.problem(op, "there is no %s operator", op)
	case isPath:
		r.valuePath = f.path(op, true, true)
	default:
		r.value, _ = f.get(op)
		checkOperand(f, op, r)
	}
	return r
}

func checkOperand(f *fields, op string, r *choiceRule) {
	switch comparisons[op] {
	case opString:
		s, ok := r.value.(string)
		if !ok {
			f.problem(op, "must be a string")
			return
		}
		if op == "StringMatches" {
			m, err := splitMatch(s)
			if err != nil {
				f.problem(op, "%v", err)
			}
			r.match = m
		}
	case opNumber:
		if _, ok := r.value.(json.Number); !ok {
			f.problem(op, "must be a number")
		}
	case opBoolean:
		if _, ok := r.value.(bool); !ok {
			f.problem(op, "must be a boolean")
		}
	case opTimestamp:
		s, _ := r.value.(string)
		if _, err := parseTimestamp(s); err != nil {
			f.problem(op, "must be an RFC 3339 timestamp")
		}
	}
}

func (s *choiceState) enter(cl *call) Step {
	if s.jsonata {
		return s.enterJ(cl)
	}
	eff, err := s.inputPath.apply(cl.input, cl, "InputPath")
	if err != nil {
		return failStep(asStateError(err))
	}
	// A matching rule's Assign applies; the state's own Assign applies
	// when Default is taken.
	next, assign := s.def, s.assign
	for _, r := range s.choices {
		ok, serr := r.eval(eff, cl)
		if serr != nil {
			return failStep(serr)
		}
		if ok {
			next, assign = r.next, r.assign
			break
		}
	}
	if next == "" {
		return failStep(&stateError{ErrNoChoiceMatched, fmt.Sprintf("No Choice Rule matched and no Default is specified in state '%s'", s.name)})
	}
	out, err := s.outputPath.apply(eff, cl, "OutputPath")
	if err != nil {
		return failStep(asStateError(err))
	}
	step, serr := withAssign(assign, eff, cl, s.proceed(cl, out))
	if serr != nil {
		return failStep(serr)
	}
	if step.Kind == StepFail {
		return step
	}
	step.Next = next
	return step
}

func (r *choiceRule) eval(in any, cl *call) (bool, *stateError) {
	switch {
	case r.and != nil:
		for _, sub := range r.and {
			ok, err := sub.eval(in, cl)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case r.or != nil:
		for _, sub := range r.or {
			ok, err := sub.eval(in, cl)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case r.not != nil:
		ok, err := r.not.eval(in, cl)
		return !ok, err
	}
	v, err := r.variable.get(in, cl)
	if err != nil {
		if r.op == "IsPresent" {
			return r.value == false, nil
		}
		return false, &stateError{ErrRuntime, fmt.Sprintf("Invalid path '%s': The choice state's condition path references an invalid value.", r.variable.src)}
	}
	want := r.value
	if r.valuePath != nil {
		if want, err = r.valuePath.get(in, cl); err != nil {
			return false, &stateError{ErrRuntime, fmt.Sprintf("Invalid path '%s': The choice state's condition path references an invalid value.", r.valuePath.src)}
		}
	}
	return compare(r.op, v, want, r.match), nil
}

// compare applies a comparison operator. A value of the wrong type for
// the operator makes the comparison false, as in Step Functions.
func compare(op string, v, want any, match []string) bool {
	switch op {
	case "IsPresent":
		return want == true
	case "IsNull":
		return (v == nil) == want
	case "IsNumeric":
		_, ok := v.(json.Number)
		return ok == want
	case "IsString":
		_, ok := v.(string)
		return ok == want
	case "IsBoolean":
		_, ok := v.(bool)
		return ok == want
	case "IsTimestamp":
		s, ok := v.(string)
		if ok {
			_, err := parseTimestamp(s)
			ok = err == nil
		}
		return ok == want
	case "BooleanEquals":
		b, ok := v.(bool)
		w, wok := want.(bool)
		return ok && wok && b == w
	case "StringMatches":
		s, ok := v.(string)
		return ok && matchWildcard(match, s)
	}
	var c int
	switch comparisons[op] {
	case opString:
		a, ok := v.(string)
		b, wok := want.(string)
		if !ok || !wok {
			return false
		}
		c = strings.Compare(a, b)
	case opNumber:
		a, ok := v.(json.Number)
		b, wok := want.(json.Number)
		if !ok || !wok {
			return false
		}
		c = compareNumbers(a, b)
	case opTimestamp:
		a, ok := v.(string)
		b, wok := want.(string)
		if !ok || !wok {
			return false
		}
		ta, err1 := parseTimestamp(a)
		tb, err2 := parseTimestamp(b)
		if err1 != nil || err2 != nil {
			return false
		}
		c = ta.Compare(tb)
	}
	switch {
	case strings.HasSuffix(op, "LessThanEquals"):
		return c <= 0
	case strings.HasSuffix(op, "GreaterThanEquals"):
		return c >= 0
	case strings.HasSuffix(op, "LessThan"):
		return c < 0
	case strings.HasSuffix(op, "GreaterThan"):
		return c > 0
	}
	return c == 0 // ...Equals
}

// compareNumbers compares exactly (as rationals), so 0.1+0.2-style float
// rounding and integers past 2^53 compare as written.
func compareNumbers(a, b json.Number) int {
	x, ok1 := new(big.Rat).SetString(string(a))
	y, ok2 := new(big.Rat).SetString(string(b))
	if !ok1 || !ok2 {
		return strings.Compare(string(a), string(b))
	}
	return x.Cmp(y)
}

// splitMatch splits a StringMatches pattern at its unescaped '*'; `\*` is a
// literal star and `\\` a literal backslash.
func splitMatch(p string) ([]string, error) {
	var parts []string
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if i+1 >= len(p) || (p[i+1] != '*' && p[i+1] != '\\') {
				return nil, fmt.Errorf(`%q: a backslash must escape * or \`, p)
			}
			b.WriteByte(p[i+1])
			i++
		case '*':
			parts = append(parts, b.String())
			b.Reset()
		default:
			b.WriteByte(p[i])
		}
	}
	return append(parts, b.String()), nil
}

// matchWildcard matches s against pattern parts separated by '*'.
func matchWildcard(parts []string, s string) bool {
	if len(parts) == 1 {
		return s == parts[0]
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
