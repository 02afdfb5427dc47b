package asl

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// The JSONata side of each state kind: what its fields mean when the
// state's QueryLanguage is JSONata. The state kinds' files call these when
// base.jsonata is set.

// jtmpl reads a field whose JSON may hold `{% %}` expressions.
func (f *fields) jtmpl(name string) *jtemplate {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	return compileJTemplate(v, f.at+name, func(field, msg string) { f.ck.add(f.state, field, msg) })
}

// jint reads an integer field that may instead be an expression.
func (f *fields) jint(name string, lo, hi int) (int, *jexpr) {
	v, has := f.obj[name]
	if !has {
		return 0, nil
	}
	if s, isStr := v.(string); isStr {
		f.get(name)
		body, ok := jsonataString(s)
		if !ok {
			f.problem(name, "must be an integer or a {%% expression %%}, not the string %q", s)
			return 0, nil
		}
		e, err := compileJExpr(body)
		if err != nil {
			f.problem(name, "%v", err)
		}
		return 0, e
	}
	n, _ := f.integer(name, lo, hi)
	return n, nil
}

// jstring reads a string field that may be an expression.
func (f *fields) jstring(name string) (string, *jexpr) {
	s, ok := f.str(name)
	if !ok {
		return "", nil
	}
	if body, isExpr := jsonataString(s); isExpr {
		e, err := compileJExpr(body)
		if err != nil {
			f.problem(name, "%v", err)
		}
		return "", e
	}
	return s, nil
}

// jnumber evaluates an integer-valued expression of a field.
func jnumber(e *jexpr, env *jenv, field string, lo, hi int) (int, *stateError) {
	v, undefined, err := e.eval(env)
	if err != nil {
		return 0, asStateError(err)
	}
	n, ok := v.(json.Number)
	x, ferr := n.Float64()
	if undefined || !ok || ferr != nil || x != math.Trunc(x) || x < float64(lo) || x > float64(hi) {
		return 0, &stateError{ErrQueryEvaluation, fmt.Sprintf("The JSONata expression '%s' of %s must give an integer from %d to %d, not %s", e.src, field, lo, hi, encodeJSON(v))}
	}
	return int(x), nil
}

// jfinish ends a JSONata state: Output (or the default) and Assign, both
// seeing the same $states and the variables from the state's entry.
func (b *base) jfinish(cl *call, env *jenv, def any) Step {
	out := def
	if b.output != nil {
		v, err := b.output.eval(env)
		if err != nil {
			return failStep(asStateError(err))
		}
		out = v
	}
	step, serr := withAssign(b.assign, env, cl, b.proceed(cl, out))
	if serr != nil {
		return failStep(serr)
	}
	return step
}

func (s *passState) enterJ(cl *call) Step {
	return s.jfinish(cl, newJEnv(cl), cl.input)
}

func (s *succeedState) enterJ(cl *call) Step {
	return s.jfinish(cl, newJEnv(cl), cl.input)
}

func (s *waitState) enterJ(cl *call, now time.Time) Step {
	env := newJEnv(cl)
	until := now.Add(time.Duration(s.seconds) * time.Second)
	switch {
	case s.secondsExpr != nil:
		n, err := jnumber(s.secondsExpr, env, "Seconds", 0, maxWaitSeconds)
		if err != nil {
			return failStep(err)
		}
		until = now.Add(time.Duration(n) * time.Second)
	case s.timestampExpr != nil:
		v, err := (&jtemplate{kind: 'e', expr: s.timestampExpr, at: "Timestamp"}).eval(env)
		if err != nil {
			return failStep(asStateError(err))
		}
		str, _ := v.(string)
		t, perr := parseTimestamp(str)
		if perr != nil {
			return failStep(&stateError{ErrQueryEvaluation, fmt.Sprintf("The JSONata expression '%s' of Timestamp must give an RFC 3339 timestamp, not %s", s.timestampExpr.src, encodeJSON(v))})
		}
		until = t
	case !s.timestamp.IsZero():
		until = s.timestamp
	}
	step := s.jfinish(cl, env, cl.input)
	if step.Kind == StepFail {
		return step
	}
	return Step{Kind: StepWait, Next: step.Next, Output: step.Output, Until: until, Variables: step.Variables}
}

func (s *failState) enterJ(cl *call) Step {
	env := newJEnv(cl)
	str := func(lit string, e *jexpr, field string) (string, *stateError) {
		if e == nil {
			return lit, nil
		}
		v, undefined, err := e.eval(env)
		if err != nil {
			return "", asStateError(err)
		}
		s, ok := v.(string)
		if undefined || !ok {
			return "", &stateError{ErrQueryEvaluation, fmt.Sprintf("The JSONata expression '%s' of %s must give a string, not %s", e.src, field, encodeJSON(v))}
		}
		return s, nil
	}
	errName, err := str(s.errName, s.errExpr, "Error")
	if err != nil {
		return failStep(err)
	}
	cause, err := str(s.cause, s.causeExpr, "Cause")
	if err != nil {
		return failStep(err)
	}
	return Step{Kind: StepFail, Error: errName, Cause: cause}
}

func (s *choiceState) enterJ(cl *call) Step {
	env := newJEnv(cl)
	for _, r := range s.choices {
		v, undefined, err := r.condition.eval(env)
		if err != nil {
			return failStep(asStateError(err))
		}
		b, ok := v.(bool)
		if undefined || !ok {
			return failStep(&stateError{ErrQueryEvaluation, fmt.Sprintf("The Condition '%s' must give true or false, not %s", r.condition.src, encodeJSON(v))})
		}
		if b {
			rule := base{name: s.name, next: r.next, assign: r.assign, output: r.output}
			return rule.jfinish(cl, env, cl.input)
		}
	}
	if s.def == "" {
		return failStep(&stateError{ErrNoChoiceMatched, fmt.Sprintf("No Choice Rule matched and no Default is specified in state '%s'", s.name)})
	}
	def := base{name: s.name, next: s.def, assign: s.assign, output: s.output}
	return def.jfinish(cl, env, cl.input)
}

// prepareJ computes a JSONata Task's attempt: Arguments (default: the
// state input) and the timeouts.
func (s *taskState) prepareJ(cl *call) (*Task, *stateError) {
	env := newJEnv(cl)
	t := &Task{State: s.name, Resource: s.resource, Pattern: s.pattern, TimeoutSeconds: s.timeoutSeconds, HeartbeatSeconds: s.heartbeatSeconds}
	var err *stateError
	if s.timeoutExpr != nil {
		if t.TimeoutSeconds, err = jnumber(s.timeoutExpr, env, "TimeoutSeconds", 1, maxTaskSeconds); err != nil {
			return nil, err
		}
	}
	if s.heartbeatExpr != nil {
		if t.HeartbeatSeconds, err = jnumber(s.heartbeatExpr, env, "HeartbeatSeconds", 1, maxTaskSeconds); err != nil {
			return nil, err
		}
	}
	if t.TimeoutSeconds > 0 && t.HeartbeatSeconds >= t.TimeoutSeconds {
		return nil, &stateError{ErrRuntime, fmt.Sprintf("the heartbeat (%d s) must be shorter than the timeout (%d s)", t.HeartbeatSeconds, t.TimeoutSeconds)}
	}
	args := cl.input
	if s.arguments != nil {
		v, aerr := s.arguments.eval(env)
		if aerr != nil {
			return nil, asStateError(aerr)
		}
		args = v
	}
	t.Parameters = encodeJSON(args)
	if len(t.Parameters) > maxPayload {
		return nil, &stateError{ErrDataLimitExceeded, fmt.Sprintf("The task '%s' has arguments larger than %d bytes", s.name, maxPayload)}
	}
	return t, nil
}

// jresult ends a JSONata Task, Parallel or Map with its result: Output
// (default: the result) and Assign see $states.result.
func (b *base) jresult(h *handlers, cl *call, result any) Step {
	step := b.jfinish(cl, newJEnv(cl).with("result", result), result)
	if step.Kind == StepFail {
		return h.recover(cl, &stateError{step.Error, step.Cause})
	}
	return step
}

// jcatch is a JSONata catcher's outcome: its Output (default: the error
// output) and Assign see $states.errorOutput.
func (c *catcher) jcatch(stateName string, cl *call, errOut map[string]any, caught *TaskError) Step {
	env := newJEnv(cl).with("errorOutput", errOut)
	b := base{name: stateName, next: c.next, assign: c.assign, output: c.output}
	step := b.jfinish(cl, env, errOut)
	if step.Kind != StepFail {
		step.Caught = caught
	}
	return step
}

// branchInputJ is a JSONata Parallel's Arguments (default: its input).
func (s *parallelState) branchInputJ(cl *call) (any, *stateError) {
	if s.arguments == nil {
		return cl.input, nil
	}
	v, err := s.arguments.eval(newJEnv(cl))
	if err != nil {
		return nil, asStateError(err)
	}
	return v, nil
}

// prepareJ computes a JSONata Map's iterations: Items (default: the
// state input), each through ItemSelector with $states.context.Map.Item.
func (s *mapState) prepareJ(cl *call) (Step, *stateError) {
	env := newJEnv(cl)
	var items any = cl.input
	if s.items != nil {
		v, err := s.items.eval(env)
		if err != nil {
			return Step{}, asStateError(err)
		}
		items = v
	}
	arr, ok := items.([]any)
	if !ok {
		return Step{}, &stateError{ErrQueryEvaluation, fmt.Sprintf("The Map state '%s' needs an array of items, not a %s", s.name, jsonType(items))}
	}
	mc := s.maxConcurrency
	if s.maxConcurrencyExpr != nil {
		n, err := jnumber(s.maxConcurrencyExpr, env, "MaxConcurrency", 0, math.MaxInt32)
		if err != nil {
			return Step{}, err
		}
		mc = n
	}
	step := Step{Kind: StepBranches, MaxConcurrency: mc, Branches: make([]Branch, 0, len(arr))}
	saved := cl.c.Map
	defer func() { cl.c.Map = saved; cl.resetCtx() }()
	for i, item := range arr {
		in := item
		if s.itemSelectorJ != nil {
			cl.c.Map = &MapContext{Item: MapItem{Index: i, Value: encodeJSON(item)}}
			cl.resetCtx()
			// Only the context changes from item to item: the state input,
			// which holds every item, is converted once.
			v, err := s.itemSelectorJ.eval(env.with("context", cl.ctx()))
			if err != nil {
				return Step{}, asStateError(err)
			}
			in = v
		}
		step.Branches = append(step.Branches, Branch{Machine: s.processor, Input: encodeJSON(in), Isolated: s.distributed})
	}
	return step, nil
}
