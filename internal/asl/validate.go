package asl

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Parsing and validation are one pass: each state kind's parser reads its
// fields through a fields value, which records a Problem for every field
// that is missing, mistyped, malformed or unknown, and keeps going, so one
// Parse reports everything wrong with a definition.

// maxStateName is Step Functions' limit on state names.
const maxStateName = 80

// unsupported names fields this package recognises but does not run; they
// are problems, never silently ignored.
var unsupported = map[string]string{
	"Arguments":    "Arguments belongs to JSONata (set \"QueryLanguage\": \"JSONata\"); a JSONPath state uses Parameters",
	"Output":       "Output belongs to JSONata (set \"QueryLanguage\": \"JSONata\"); a JSONPath state uses OutputPath and ResultSelector",
	"Items":        "Items belongs to JSONata (set \"QueryLanguage\": \"JSONata\"); a JSONPath Map uses ItemsPath",
	"Credentials":  "Credentials (cross-account tasks) is not supported",
	"ItemReader":   "ItemReader (distributed Map) is not supported",
	"ResultWriter": "ResultWriter (distributed Map) is not supported",
	"ItemBatcher":  "ItemBatcher (distributed Map) is not supported",
	"Condition":    "Condition belongs to JSONata (set \"QueryLanguage\": \"JSONata\"); a JSONPath rule uses Variable and a comparison",
}

// jsonataField are the fields only JSONata states have.
var jsonataField = map[string]bool{"Arguments": true, "Output": true, "Items": true, "Condition": true}

// jsonPathOnly are the fields a JSONata state cannot have, with what it
// uses instead.
var jsonPathOnly = map[string]string{
	"InputPath": "$states.input in its expressions", "OutputPath": "Output", "Parameters": "Arguments",
	"ResultSelector": "Output", "ResultPath": "Output (and Assign)", "ItemsPath": "Items",
	"SecondsPath": "Seconds with an expression", "TimestampPath": "Timestamp with an expression",
	"TimeoutSecondsPath": "TimeoutSeconds with an expression", "HeartbeatSecondsPath": "HeartbeatSeconds with an expression",
	"MaxConcurrencyPath": "MaxConcurrency with an expression", "ToleratedFailureCountPath": "ToleratedFailureCount with an expression",
	"ToleratedFailurePercentagePath": "ToleratedFailurePercentage with an expression",
	"ErrorPath":                      "Error with an expression", "CausePath": "Cause with an expression",
}

// refuseJSONPath reports (and drops, so nothing else reports them again)
// the JSONPath fields of a JSONata state's object.
func (f *fields) refuseJSONPath() {
	if !f.jsonata {
		return
	}
	keys := make([]string, 0, len(f.obj))
	for k := range f.obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if use, ok := jsonPathOnly[k]; ok {
			f.problem(k, "%s is a JSONPath field; a JSONata state uses %s", k, use)
			f.seen[k] = true
			delete(f.obj, k)
		}
	}
}

type checker struct {
	problems []Problem
	// jsonata holds the states whose query language is JSONata, so every
	// object read for them (retriers, catchers, rules) reads JSONata.
	jsonata map[string]bool
	// topQL is the top-level QueryLanguage.
	topQL string
}

func (ck *checker) add(state, field, msg string) {
	ck.problems = append(ck.problems, Problem{State: state, Field: field, Message: msg})
}

// fields reads one JSON object of the definition (a state, a retrier, a
// Choice rule) and remembers which fields were read.
type fields struct {
	ck      *checker
	state   string
	at      string // prefix of field names: "" for a state, "Retry[0]." for a retrier
	obj     map[string]any
	seen    map[string]bool
	jsonata bool
}

func newFields(ck *checker, state, at string, obj map[string]any) *fields {
	return &fields{ck: ck, state: state, at: at, obj: obj, seen: map[string]bool{}, jsonata: ck.jsonata[state]}
}

func (f *fields) problem(name, format string, args ...any) {
	f.ck.add(f.state, strings.TrimSuffix(f.at+name, "."), fmt.Sprintf(format, args...))
}

func (f *fields) has(name string) bool {
	_, ok := f.obj[name]
	return ok
}

func (f *fields) get(name string) (any, bool) {
	f.seen[name] = true
	v, ok := f.obj[name]
	return v, ok
}

func (f *fields) str(name string) (string, bool) {
	v, ok := f.get(name)
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		f.problem(name, "must be a string, not a %s", jsonType(v))
		return "", false
	}
	return s, true
}

func (f *fields) required(name string) string {
	s, ok := f.str(name)
	if !ok && !f.has(name) {
		f.problem(name, "is required")
	}
	return s
}

func (f *fields) number(name string) (float64, bool) {
	v, ok := f.get(name)
	if !ok {
		return 0, false
	}
	n, isNum := v.(json.Number)
	if !isNum {
		f.problem(name, "must be a number, not a %s", jsonType(v))
		return 0, false
	}
	x, err := n.Float64()
	if err != nil {
		f.problem(name, "%s is not a usable number", n)
		return 0, false
	}
	return x, true
}

// integer reads an integer within [lo, hi].
func (f *fields) integer(name string, lo, hi int) (int, bool) {
	x, ok := f.number(name)
	if !ok {
		return 0, false
	}
	if x != math.Trunc(x) || x < float64(lo) || x > float64(hi) {
		f.problem(name, "must be an integer from %d to %d", lo, hi)
		return 0, false
	}
	return int(x), true
}

func (f *fields) boolean(name string) (bool, bool) {
	v, ok := f.get(name)
	if !ok {
		return false, false
	}
	b, isBool := v.(bool)
	if !isBool {
		f.problem(name, "must be a boolean, not a %s", jsonType(v))
		return false, false
	}
	return b, true
}

func (f *fields) object(name string) (map[string]any, bool) {
	v, ok := f.get(name)
	if !ok {
		return nil, false
	}
	o, isObj := v.(map[string]any)
	if !isObj {
		f.problem(name, "must be an object, not a %s", jsonType(v))
		return nil, false
	}
	return o, true
}

func (f *fields) array(name string) ([]any, bool) {
	v, ok := f.get(name)
	if !ok {
		return nil, false
	}
	a, isArr := v.([]any)
	if !isArr {
		f.problem(name, "must be an array, not a %s", jsonType(v))
		return nil, false
	}
	return a, true
}

// path reads a Path (input data only, or also `$$` when context is true).
func (f *fields) path(name string, ref, context bool) *path {
	s, ok := f.str(name)
	if !ok {
		return nil
	}
	return f.checkPath(name, s, ref, context)
}

func (f *fields) checkPath(name, s string, ref, context bool) *path {
	parse := parsePath
	if ref {
		parse = parseRefPath
	}
	p, err := parse(s)
	if err != nil {
		f.problem(name, "%v", err)
		return nil
	}
	if p.context && !context {
		f.problem(name, "%q: the context object ($$) cannot be used here", s)
		return nil
	}
	return p
}

// filter reads InputPath or OutputPath: a Path or null.
func (f *fields) filter(name string) *inputFilter {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	if v == nil {
		return &inputFilter{null: true}
	}
	p := f.path(name, false, false)
	if p == nil {
		return nil
	}
	if p.singular && len(p.ref) == 0 && p.variable == "" {
		return nil // "$" keeps everything, the default
	}
	return &inputFilter{p: p}
}

// resultPath reads a ResultPath: a Reference Path or null.
func (f *fields) resultPath(name string) *resultPath {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	if v == nil {
		return &resultPath{discard: true}
	}
	p := f.path(name, true, false)
	if p != nil && p.variable != "" {
		f.problem(name, "%q: ResultPath places the result in the state's output; it cannot name a variable (use Assign)", p.src)
		return nil
	}
	if p == nil || len(p.ref) == 0 {
		return nil // "$": the result replaces the input, the default
	}
	return &resultPath{p: p}
}

func (f *fields) payload(name string) *payload {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	if _, isObj := v.(map[string]any); !isObj {
		// The spec allows any JSON, but Step Functions requires an object;
		// a literal is still run as written.
		if _, isArr := v.([]any); !isArr {
			return &payload{literal: v, static: true}
		}
	}
	return compilePayload(v, f.at+name, func(field, msg string) { f.ck.add(f.state, field, msg) })
}

// noTransition reports Next and End on the states that end the execution.
func (f *fields) noTransition(typ string) {
	for _, k := range []string{"Next", "End"} {
		if f.has(k) {
			f.get(k)
			f.problem(k, "a %s state ends the execution: it has neither Next nor End", typ)
		}
	}
}

// transition reads Next/End for the states that have one of them.
func (f *fields) transition(b *base) {
	next, hasNext := f.str("Next")
	end, _ := f.boolean("End")
	switch {
	case hasNext && end:
		f.problem("End", "End and Next cannot both be set")
	case !hasNext && !end && !f.has("Next"):
		f.problem("Next", "a %s state needs Next or \"End\": true", b.typ)
	}
	b.next, b.end = next, end
}

// finish reports every field that was not read.
func (f *fields) finish() {
	var unknown []string
	for k := range f.obj {
		if !f.seen[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		if f.jsonata && jsonataField[k] {
			// A JSONata field this state kind does not have: saying it
			// belongs to JSONata would be false here.
			f.problem(k, "this state has no %s field", k)
			continue
		}
		if msg, ok := unsupported[k]; ok {
			f.problem(k, "%s", msg)
			continue
		}
		f.problem(k, "unknown field")
	}
}

func parse(def []byte) (*StateMachine, error) {
	doc, err := decodeJSON(def)
	if err != nil {
		return nil, &ValidationError{Problems: []Problem{{Message: fmt.Sprintf("the definition is not JSON: %v", err)}}}
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, &ValidationError{Problems: []Problem{{Message: "the definition must be a JSON object"}}}
	}
	ck := &checker{}
	f := newFields(ck, "", "", top)
	f.str("Version")
	ck.topQL = queryJSONPath
	if ql, ok := f.str("QueryLanguage"); ok {
		if ql != queryJSONPath && ql != queryJSONata {
			f.problem("QueryLanguage", "must be JSONPath or JSONata, not %q", ql)
		} else {
			ck.topQL = ql
		}
	}
	timeout, _ := f.integer("TimeoutSeconds", 1, math.MaxInt32)
	m := parseMachine(ck, f, nil, "")
	m.timeoutSeconds = timeout
	if len(ck.problems) > 0 {
		return nil, &ValidationError{Problems: ck.problems}
	}
	return m, nil
}

// parseMachine reads StartAt, States and Comment from f (the top level, a
// Parallel branch or a Map's ItemProcessor) and reports the other fields of
// f as unknown. root is the top-level machine (nil when parsing it); path
// names the machine in root (see Machine).
func parseMachine(ck *checker, f *fields, root *StateMachine, path string) *StateMachine {
	m := &StateMachine{states: map[string]state{}, path: path, root: root}
	if root == nil {
		m.root = m
		m.machines = map[string]*StateMachine{}
	}
	m.root.machines[path] = m
	m.startAt = f.required("StartAt")
	f.str("Comment")
	states, ok := f.object("States")
	if !ok && !f.has("States") {
		f.problem("States", "is required")
	}
	if ok && len(states) == 0 {
		f.problem("States", "must have at least one state")
	}
	f.finish()

	names := make([]string, 0, len(states))
	for name := range states {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if s := parseState(ck, m, name, states[name]); s != nil {
			m.states[name] = s
		}
	}
	if m.startAt != "" && states != nil {
		if _, ok := states[m.startAt]; !ok {
			f.problem("StartAt", "state %q does not exist", m.startAt)
		}
	}
	m.checkTransitions(ck, names)
	return m
}

func parseState(ck *checker, m *StateMachine, name string, raw any) state {
	obj, ok := raw.(map[string]any)
	if !ok {
		ck.add(name, "", "a state must be a JSON object")
		return nil
	}
	if len(name) > maxStateName {
		ck.add(name, "", fmt.Sprintf("a state name can have at most %d characters", maxStateName))
	}
	f := newFields(ck, name, "", obj)
	typ, ok := f.str("Type")
	if !ok {
		if !f.has("Type") {
			f.problem("Type", "is required")
		}
		return nil
	}
	f.str("Comment")
	ql := ck.topQL
	if v, ok := f.str("QueryLanguage"); ok {
		switch {
		case v != queryJSONPath && v != queryJSONata:
			f.problem("QueryLanguage", "must be JSONPath or JSONata, not %q", v)
		case v == queryJSONPath && ck.topQL == queryJSONata:
			f.problem("QueryLanguage", "a state cannot use JSONPath when the state machine's QueryLanguage is JSONata")
		default:
			ql = v
		}
	}
	if ql == queryJSONata {
		if ck.jsonata == nil {
			ck.jsonata = map[string]bool{}
		}
		ck.jsonata[name] = true
		f.jsonata = true
		f.refuseJSONPath()
	}
	b := base{name: name, typ: typ, jsonata: f.jsonata}
	var s state
	switch typ {
	case "Pass":
		s = parsePass(f, b)
	case "Task":
		s = parseTask(f, b)
	case "Choice":
		s = parseChoice(f, b)
	case "Wait":
		s = parseWait(f, b)
	case "Succeed":
		s = parseSucceed(f, b)
	case "Fail":
		s = parseFail(f, b)
	case "Parallel":
		s = parseParallel(f, b, m)
	case "Map":
		s = parseMap(f, b, m)
	default:
		f.problem("Type", "unknown state type %q", typ)
		return nil
	}
	f.finish()
	return s
}

// checkTransitions reports transitions to missing states and states no
// transition reaches.
func (m *StateMachine) checkTransitions(ck *checker, names []string) {
	exists := func(n string) bool { return slices.Contains(names, n) }
	dangling := false
	for _, name := range names {
		s, ok := m.states[name]
		if !ok {
			continue
		}
		for _, t := range s.common().targets {
			if t.to != "" && !exists(t.to) {
				ck.add(name, t.field, fmt.Sprintf("state %q does not exist", t.to))
				dangling = true
			}
		}
	}
	if dangling {
		return // a misspelt Next would make its real target look unreachable
	}
	if _, ok := m.states[m.startAt]; !ok {
		return // reachability means little when states failed to parse
	}
	if len(m.states) != len(names) {
		return
	}
	reached := map[string]bool{m.startAt: true}
	queue := []string{m.startAt}
	for len(queue) > 0 {
		s := m.states[queue[0]]
		queue = queue[1:]
		for _, t := range s.common().targets {
			if _, ok := m.states[t.to]; ok && !reached[t.to] {
				reached[t.to] = true
				queue = append(queue, t.to)
			}
		}
	}
	for _, name := range names {
		if !reached[name] {
			ck.add(name, "", "no transition reaches this state")
		}
	}
}

// checkErrorEquals validates a Retry or Catch list's ErrorEquals fields:
// States.ALL must be alone and in the last entry.
func checkErrorEquals(f *fields, i, n int) []string {
	arr, ok := f.array("ErrorEquals")
	if !ok {
		if !f.has("ErrorEquals") {
			f.problem("ErrorEquals", "is required")
		}
		return nil
	}
	if len(arr) == 0 {
		f.problem("ErrorEquals", "must list at least one error name")
	}
	var out []string
	for _, v := range arr {
		s, ok := v.(string)
		if !ok {
			f.problem("ErrorEquals", "error names must be strings")
			continue
		}
		if strings.HasPrefix(s, "States.") && !knownError(s) {
			f.problem("ErrorEquals", "%q is not a States.* error name", s)
		}
		out = append(out, s)
	}
	if slices.Contains(out, ErrAll) {
		if len(out) > 1 {
			f.problem("ErrorEquals", "States.ALL must be the only error name in its list")
		}
		if i != n-1 {
			f.problem("ErrorEquals", "States.ALL must be in the last entry")
		}
	}
	return out
}

func knownError(s string) bool {
	switch s {
	case ErrAll, ErrTimeout, ErrHeartbeatTimeout, ErrTaskFailed, ErrRuntime, ErrNoChoiceMatched,
		ErrParameterPathFailure, ErrResultPathMatch, ErrIntrinsicFailure, ErrDataLimitExceeded,
		ErrPermissions, "States.BranchFailed", "States.ExceedToleratedFailureThreshold",
		"States.ItemReaderFailed", "States.ResultWriterFailed", "States.QueryEvaluationError",
		"States.Http.Socket":
		return true
	}
	return false
}
