package asl

import (
	"fmt"
	"sort"
	"strings"
)

// Workflow variables (https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html):
// a state's Assign sets them, `$name` reads them in any path, payload
// template, Choice rule or intrinsic argument. Every expression of a state
// reads the values the variables had when the state was entered; the new
// values take effect when it is left, all at once.
//
// The engine carries them: Context.Variables is the JSON object of the
// variables visible to the state, and a Step that assigns returns the whole
// new object in Step.Variables. A Parallel branch or a Map iteration starts
// with its parent's variables (it reads the outer scope) and its own
// assignments stay in it (the outer scope never sees them), which is the
// scoping rule of the developer guide.

// maxVariableName is Step Functions' limit on a variable name.
const maxVariableName = 80

// maxVariables bounds all the variables of one scope (10 MiB per execution
// in Step Functions; one scope is what this engine holds at a time).
const maxVariables = 10 * 1024 * 1024

// cutVariable splits `$name.rest` into name and `.rest`. It reports false
// for `$`, `$.x`, `$[0]` and `$$...`.
func cutVariable(s string) (name, rest string, ok bool) {
	if len(s) < 2 || s[0] != '$' || !variableStart(rune(s[1])) {
		return "", "", false
	}
	end := 1
	for end < len(s) && variablePart(rune(s[end])) {
		end++
	}
	return s[1:end], s[end:], true
}

func variableStart(r rune) bool {
	return r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

func variablePart(r rune) bool { return variableStart(r) || r >= '0' && r <= '9' }

// checkVariableName says what is wrong with a name Assign would set.
func checkVariableName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a variable needs a name")
	case len(name) > maxVariableName:
		return fmt.Errorf("variable name %q is longer than %d characters", name, maxVariableName)
	case name == "states":
		return fmt.Errorf("$states is reserved")
	case !variableStart(rune(name[0])):
		return fmt.Errorf("variable name %q must start with a letter or _", name)
	}
	for _, r := range name {
		if !variablePart(r) {
			return fmt.Errorf("variable name %q may only have letters, digits and _", name)
		}
	}
	return nil
}

// assignment is a compiled Assign field.
type assignment struct {
	tmpl *payload   // JSONPath
	jt   *jtemplate // JSONata
}

// parseAssign reads Assign: an object whose fields are variable names (with
// ".$" for a path or an intrinsic function, as in a payload template).
func (f *fields) assign(name string) *assignment {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		f.problem(name, "must be an object whose fields name the variables to set, not a %s", jsonType(v))
		return nil
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := checkVariableName(strings.TrimSuffix(k, ".$")); err != nil {
			f.problem(name+"."+k, "%v", err)
		}
	}
	problem := func(field, msg string) { f.ck.add(f.state, field, msg) }
	if f.jsonata {
		return &assignment{jt: compileJTemplate(obj, f.at+name, problem)}
	}
	return &assignment{tmpl: compilePayload(obj, f.at+name, problem)}
}

// eval evaluates the assignment with `$` bound to value (in a JSONata
// state, value is the *jenv its expressions see) and returns the variables
// after it: the visible ones with the assigned ones replaced.
func (a *assignment) eval(value any, cl *call) (map[string]any, *stateError) {
	var v any
	var err error
	if a.jt != nil {
		env, _ := value.(*jenv)
		if env == nil {
			env = newJEnv(cl)
		}
		v, err = a.jt.eval(env)
	} else {
		v, err = a.tmpl.eval(value, cl)
	}
	if err != nil {
		return nil, asStateError(err)
	}
	set, _ := v.(map[string]any)
	if n := len(encodeJSON(set)); n > maxPayload {
		return nil, &stateError{ErrDataLimitExceeded, fmt.Sprintf("The state '%s' assigns %d bytes of variables; at most %d bytes can be assigned at once", cl.c.State.Name, n, maxPayload)}
	}
	out := make(map[string]any, len(cl.vars())+len(set))
	for k, x := range cl.vars() {
		out[k] = x
	}
	for k, x := range set {
		out[k] = x
	}
	return out, nil
}

// withAssign completes step with the state's Assign evaluated on value
// (in a JSONPath state the state's result, or its error output in a
// Catch; in a JSONata state the *jenv its expressions see). A failing
// Assign fails the state.
func withAssign(a *assignment, value any, cl *call, step Step) (Step, *stateError) {
	if a == nil || step.Kind == StepFail {
		return step, nil
	}
	vars, err := a.eval(value, cl)
	if err != nil {
		return step, err
	}
	b := encodeJSON(vars)
	if len(b) > maxVariables {
		return step, &stateError{ErrDataLimitExceeded, fmt.Sprintf("The variables of the execution exceed %d bytes", maxVariables)}
	}
	step.Variables = b
	return step, nil
}
