package asl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// state is one parsed state. Each kind lives in its own file (pass.go,
// task.go, ...) with its parser and its stepping code.
type state interface {
	common() *base
}

// base holds what every state kind has.
type base struct {
	name, typ  string
	next       string
	end        bool
	inputPath  *inputFilter
	outputPath *inputFilter
	assign     *assignment
	jsonata    bool       // the state's QueryLanguage is JSONata
	output     *jtemplate // JSONata Output
	targets    []target   // every transition, for validation
}

type target struct {
	field, to string
}

func (b *base) common() *base { return b }

func (b *base) addTarget(field, to string) {
	if to != "" {
		b.targets = append(b.targets, target{field, to})
	}
}

// maxPayload is Step Functions' limit on the data a state passes on.
const maxPayload = 256 * 1024

// proceed ends the state with output: on to Next, or the execution's end.
// An output that is the state's input as it came (a Choice, a Wait, a Pass
// with ResultPath null), given in encodeJSON's form, is passed on as it
// was written rather than encoded again.
func (b *base) proceed(cl *call, output any) Step {
	var out json.RawMessage
	if cl.raw != nil && sameValue(output, cl.input) {
		out = bytes.Clone(cl.raw) // the caller's bytes, which it may reuse
	} else {
		out = encodeJSON(output)
	}
	if len(out) > maxPayload {
		return failStep(&stateError{ErrDataLimitExceeded, fmt.Sprintf("The state/task '%s' returned a result with a size exceeding the maximum number of bytes service limit.", b.name)})
	}
	if b.end {
		return Step{Kind: StepSucceed, Output: out}
	}
	return Step{Kind: StepNext, Next: b.next, Output: out}
}

func failStep(err *stateError) Step {
	return Step{Kind: StepFail, Error: err.name, Cause: err.cause}
}

// call is what one stepping call works on: the state, its decoded input
// and the context object, built only if a path reads it.
type call struct {
	input any
	raw   json.RawMessage // the input as given, when it is in encodeJSON's form
	c     Context
	obj   any
	built bool
	// lite is the context object without Execution.Input, for the paths
	// that cannot read it ($$.Task.Token, $$.Execution.Id, ...): decoding
	// the execution's input for them cost as much as the state's own.
	lite  any
	vs    map[string]any
	vread bool
}

// vars decodes Context.Variables once per call. Variables the engine
// stored are JSON objects asl wrote; anything else reads as none.
func (cl *call) vars() map[string]any {
	if !cl.vread {
		cl.vread = true
		if len(cl.c.Variables) > 0 {
			v, _ := decodeJSON(cl.c.Variables)
			cl.vs, _ = v.(map[string]any)
		}
	}
	return cl.vs
}

func (cl *call) variable(name string) (any, bool) {
	v, ok := cl.vars()[name]
	return v, ok
}

func (cl *call) ctx() any {
	if !cl.built {
		cl.obj = contextObject(&cl.c, true)
		cl.built = true
	}
	return cl.obj
}

// resetCtx drops the context objects built so far, after a change to cl.c.
func (cl *call) resetCtx() {
	cl.obj, cl.built, cl.lite = nil, false, nil
}

// ctxFor is the context object p reads: without Execution.Input if p
// cannot read it.
func (cl *call) ctxFor(p *path) any {
	if p.readsInput() {
		return cl.ctx()
	}
	if cl.lite == nil {
		cl.lite = contextObject(&cl.c, false)
	}
	return cl.lite
}

func (m *StateMachine) newCall(name string, input json.RawMessage, c *Context) (state, *call, error) {
	s, ok := m.states[name]
	if !ok {
		return nil, nil, fmt.Errorf("asl: no state named %q", name)
	}
	in, canonical, err := decodeDoc(input)
	if err != nil {
		return nil, nil, fmt.Errorf("asl: input of state %q is not JSON: %w", name, err)
	}
	cl := &call{input: in}
	if canonical {
		cl.raw = input
	}
	if c != nil {
		cl.c = *c
	}
	cl.c.State.Name = name
	return s, cl, nil
}

func (m *StateMachine) enter(name string, input json.RawMessage, c *Context, now time.Time) (Step, error) {
	s, cl, err := m.newCall(name, input, c)
	if err != nil {
		return Step{}, err
	}
	if cl.c.State.EnteredTime.IsZero() {
		cl.c.State.EnteredTime = now
	}
	switch s := s.(type) {
	case *passState:
		return s.enter(cl), nil
	case *taskState:
		return s.enter(cl), nil
	case *choiceState:
		return s.enter(cl), nil
	case *waitState:
		return s.enter(cl, now), nil
	case *succeedState:
		return s.enter(cl), nil
	case *failState:
		return s.enter(cl), nil
	case *parallelState:
		return s.enter(cl), nil
	case *mapState:
		return s.enter(cl), nil
	}
	return Step{}, fmt.Errorf("asl: state %q has no stepping code", name)
}

func (m *StateMachine) task(name string) *taskState {
	t, ok := m.states[name].(*taskState)
	if !ok {
		panic(fmt.Sprintf("asl: %q is not a Task state", name))
	}
	return t
}

func (m *StateMachine) taskSucceeded(name string, input, result json.RawMessage, c *Context) Step {
	t := m.task(name)
	_, cl, err := m.newCall(name, input, c)
	if err != nil {
		return failStep(&stateError{ErrRuntime, err.Error()})
	}
	res, err := decodeJSON(result)
	if err != nil {
		return t.recover(cl, &stateError{ErrRuntime, fmt.Sprintf("the task result is not JSON: %v", err)})
	}
	return t.succeeded(cl, res)
}

func (m *StateMachine) taskFailed(name string, input json.RawMessage, errName, cause string, retries []int, c *Context, now time.Time, rnd *rand.Rand) Step {
	t := m.task(name)
	_, cl, err := m.newCall(name, input, c)
	if err != nil {
		return failStep(&stateError{ErrRuntime, err.Error()})
	}
	return t.failed(cl, &stateError{errName, cause}, retries, now, rnd)
}

// timeFormat is how Step Functions writes times in the context object.
const timeFormat = "2006-01-02T15:04:05.000Z"

func contextObject(c *Context, withInput bool) any {
	var input any
	if withInput && len(c.Execution.Input) > 0 {
		if v, err := decodeJSON(c.Execution.Input); err == nil {
			input = v
		}
	}
	obj := map[string]any{
		"Execution": map[string]any{
			"Id":           c.Execution.ID,
			"Name":         c.Execution.Name,
			"Input":        input,
			"StartTime":    formatTime(c.Execution.StartTime),
			"RoleArn":      c.Execution.RoleArn,
			"RedriveCount": json.Number("0"),
		},
		"StateMachine": map[string]any{
			"Id":   c.StateMachine.ID,
			"Name": c.StateMachine.Name,
		},
		"State": map[string]any{
			"Name":        c.State.Name,
			"EnteredTime": formatTime(c.State.EnteredTime),
			"RetryCount":  json.Number(fmt.Sprint(c.State.RetryCount)),
		},
	}
	if c.Task.Token != "" {
		obj["Task"] = map[string]any{"Token": c.Task.Token}
	}
	if c.Map != nil {
		var value any
		if len(c.Map.Item.Value) > 0 {
			value, _ = decodeJSON(c.Map.Item.Value)
		}
		obj["Map"] = map[string]any{"Item": map[string]any{"Index": json.Number(fmt.Sprint(c.Map.Item.Index)), "Value": value}}
	}
	return obj
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}
