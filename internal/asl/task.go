package asl

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// taskState hands work to the engine (StepTask) and then processes its
// result (TaskSucceeded) or failure (TaskFailed, through Retry and Catch).
type taskState struct {
	base
	resource         string
	pattern          Pattern
	parameters       *payload
	resultSelector   *payload
	resultPath       *resultPath
	timeoutSeconds   int
	heartbeatSeconds int
	timeoutPath      *path
	heartbeatPath    *path
	arguments        *jtemplate // JSONata
	timeoutExpr      *jexpr
	heartbeatExpr    *jexpr
	handlers
}

// handlers are the Retry and Catch of a Task, Parallel or Map state.
type handlers struct {
	stateName string
	jsonata   bool
	retry     []retrier
	catch     []catcher
}

func parseHandlers(f *fields, b *base) handlers {
	h := handlers{stateName: b.name, jsonata: f.jsonata}
	if arr, ok := f.array("Retry"); ok {
		for i, raw := range arr {
			h.retry = append(h.retry, parseRetrier(f, fmt.Sprintf("Retry[%d]", i), raw, i, len(arr)))
		}
	}
	if arr, ok := f.array("Catch"); ok {
		for i, raw := range arr {
			at := fmt.Sprintf("Catch[%d]", i)
			c := parseCatcher(f, at, raw, i, len(arr))
			h.catch = append(h.catch, c)
			b.addTarget(at+".Next", c.next)
		}
	}
	return h
}

type retrier struct {
	errorEquals     []string
	intervalSeconds int
	maxAttempts     int
	backoffRate     float64
	maxDelaySeconds int
	fullJitter      bool
}

type catcher struct {
	errorEquals []string
	next        string
	resultPath  *resultPath
	assign      *assignment
	output      *jtemplate // JSONata
}

// maxTaskSeconds bounds task timeouts as Step Functions does (99999999).
const maxTaskSeconds = 99999999

func parseTask(f *fields, b base) *taskState {
	s := &taskState{base: b}
	f.transition(&s.base)
	s.addTarget("Next", s.next)
	s.inputPath = f.filter("InputPath")
	s.outputPath = f.filter("OutputPath")
	s.parameters = f.payload("Parameters")
	s.resultSelector = f.payload("ResultSelector")
	s.resultPath = f.resultPath("ResultPath")
	s.assign = f.assign("Assign")

	res := f.required("Resource")
	s.resource, s.pattern = res, RequestResponse
	if r, ok := strings.CutSuffix(res, ".waitForTaskToken"); ok {
		s.resource, s.pattern = r, WaitForTaskToken
	} else if r, ok := strings.CutSuffix(res, ".sync"); ok {
		s.resource, s.pattern = r, RunJob
	} else if r, ok := strings.CutSuffix(res, ".sync:2"); ok {
		s.resource, s.pattern = r, RunJob
	}
	if res != "" && !strings.HasPrefix(res, "arn:") {
		f.problem("Resource", "%q is not an ARN", res)
	}

	if f.jsonata {
		s.arguments = f.jtmpl("Arguments")
		s.output = f.jtmpl("Output")
	}
	s.timeoutSeconds, s.timeoutExpr = f.jint("TimeoutSeconds", 1, maxTaskSeconds)
	s.heartbeatSeconds, s.heartbeatExpr = f.jint("HeartbeatSeconds", 1, maxTaskSeconds)
	if !f.jsonata && (s.timeoutExpr != nil || s.heartbeatExpr != nil) {
		f.problem("TimeoutSeconds", "a {%% %%} expression needs \"QueryLanguage\": \"JSONata\"; a JSONPath state uses TimeoutSecondsPath/HeartbeatSecondsPath")
	}
	s.timeoutPath = f.path("TimeoutSecondsPath", true, false)
	s.heartbeatPath = f.path("HeartbeatSecondsPath", true, false)
	if f.has("TimeoutSeconds") && f.has("TimeoutSecondsPath") {
		f.problem("TimeoutSecondsPath", "TimeoutSeconds and TimeoutSecondsPath cannot both be set")
	}
	if f.has("HeartbeatSeconds") && f.has("HeartbeatSecondsPath") {
		f.problem("HeartbeatSecondsPath", "HeartbeatSeconds and HeartbeatSecondsPath cannot both be set")
	}
	if s.timeoutSeconds > 0 && s.heartbeatSeconds >= s.timeoutSeconds {
		f.problem("HeartbeatSeconds", "must be smaller than TimeoutSeconds")
	}

	s.handlers = parseHandlers(f, &s.base)
	return s
}

func parseRetrier(parent *fields, at string, raw any, i, n int) retrier {
	r := retrier{intervalSeconds: 1, maxAttempts: 3, backoffRate: 2}
	obj, ok := raw.(map[string]any)
	if !ok {
		parent.problem(at, "a retrier must be an object")
		return r
	}
	f := newFields(parent.ck, parent.state, at+".", obj)
	defer f.finish()
	f.str("Comment")
	r.errorEquals = checkErrorEquals(f, i, n)
	if v, ok := f.integer("IntervalSeconds", 1, maxTaskSeconds); ok {
		r.intervalSeconds = v
	}
	if v, ok := f.integer("MaxAttempts", 0, maxTaskSeconds); ok {
		r.maxAttempts = v
	}
	if v, ok := f.number("BackoffRate"); ok {
		if v < 1 {
			f.problem("BackoffRate", "must be at least 1.0")
		} else {
			r.backoffRate = v
		}
	}
	if v, ok := f.integer("MaxDelaySeconds", 1, 31622400); ok {
		r.maxDelaySeconds = v
	}
	if j, ok := f.str("JitterStrategy"); ok {
		switch j {
		case "FULL":
			r.fullJitter = true
		case "NONE":
		default:
			f.problem("JitterStrategy", "must be FULL or NONE, not %q", j)
		}
	}
	return r
}

func parseCatcher(parent *fields, at string, raw any, i, n int) catcher {
	obj, ok := raw.(map[string]any)
	if !ok {
		parent.problem(at, "a catcher must be an object")
		return catcher{}
	}
	f := newFields(parent.ck, parent.state, at+".", obj)
	defer f.finish()
	f.str("Comment")
	f.refuseJSONPath()
	c := catcher{
		errorEquals: checkErrorEquals(f, i, n),
		next:        f.required("Next"),
		resultPath:  f.resultPath("ResultPath"),
		assign:      f.assign("Assign"),
	}
	if f.jsonata {
		c.output = f.jtmpl("Output")
	}
	return c
}

func (s *taskState) enter(cl *call) Step {
	t, err := s.prepare(cl)
	if err != nil {
		return s.recover(cl, err)
	}
	return Step{Kind: StepTask, Task: t}
}

// prepare computes the task to run from the state's input.
func (s *taskState) prepare(cl *call) (*Task, *stateError) {
	if s.base.jsonata {
		return s.prepareJ(cl)
	}
	eff, err := s.inputPath.apply(cl.input, cl, "InputPath")
	if err != nil {
		return nil, asStateError(err)
	}
	t := &Task{State: s.name, Resource: s.resource, Pattern: s.pattern, TimeoutSeconds: s.timeoutSeconds, HeartbeatSeconds: s.heartbeatSeconds}
	if s.timeoutPath != nil {
		if t.TimeoutSeconds, err = secondsAt(s.timeoutPath, eff, cl, "TimeoutSecondsPath"); err != nil {
			return nil, asStateError(err)
		}
	}
	if s.heartbeatPath != nil {
		if t.HeartbeatSeconds, err = secondsAt(s.heartbeatPath, eff, cl, "HeartbeatSecondsPath"); err != nil {
			return nil, asStateError(err)
		}
	}
	if t.TimeoutSeconds > 0 && t.HeartbeatSeconds >= t.TimeoutSeconds {
		return nil, &stateError{ErrRuntime, fmt.Sprintf("the heartbeat (%d s) must be shorter than the timeout (%d s)", t.HeartbeatSeconds, t.TimeoutSeconds)}
	}
	params := eff
	if s.parameters != nil {
		if params, err = s.parameters.eval(eff, cl); err != nil {
			return nil, asStateError(err)
		}
	}
	t.Parameters = encodeJSON(params)
	if len(t.Parameters) > maxPayload {
		return nil, &stateError{ErrDataLimitExceeded, fmt.Sprintf("The task '%s' has parameters larger than %d bytes", s.name, maxPayload)}
	}
	return t, nil
}

func secondsAt(p *path, eff any, cl *call, field string) (int, error) {
	v, err := p.get(eff, cl)
	if err != nil {
		return 0, &stateError{ErrRuntime, fmt.Sprintf("Invalid path '%s' in %s: the path selects nothing", p.src, field)}
	}
	n, ok := v.(json.Number)
	x, ferr := n.Float64()
	if !ok || ferr != nil || x != math.Trunc(x) || x < 1 || x > maxTaskSeconds {
		return 0, &stateError{ErrRuntime, fmt.Sprintf("%s '%s' must select a positive integer, not %s", field, p.src, encodeJSON(v))}
	}
	return int(x), nil
}

// succeeded applies ResultSelector, ResultPath and OutputPath to a result.
func (s *taskState) succeeded(cl *call, result any) Step {
	return applyResult(&s.base, &s.handlers, s.resultSelector, s.resultPath, cl, result)
}

// applyResult is what a Task, Parallel or Map state does with its result:
// ResultSelector, ResultPath, OutputPath and Assign (or the JSONata Output
// and Assign), any failure among them going through the state's Catch.
func applyResult(b *base, h *handlers, selector *payload, rp *resultPath, cl *call, result any) Step {
	if b.jsonata {
		return b.jresult(h, cl, result)
	}
	var err error
	if selector != nil {
		if result, err = selector.eval(result, cl); err != nil {
			return h.recover(cl, asStateError(err))
		}
	}
	out, err := rp.apply(cl.input, result)
	if err != nil {
		return h.recover(cl, asStateError(err))
	}
	if out, err = b.outputPath.apply(out, cl, "OutputPath"); err != nil {
		return h.recover(cl, asStateError(err))
	}
	step, serr := withAssign(b.assign, result, cl, b.proceed(cl, out))
	if serr != nil {
		return h.recover(cl, serr)
	}
	if step.Kind == StepFail {
		return h.recover(cl, &stateError{step.Error, step.Cause})
	}
	return step
}

// failed applies Retry, then Catch, to a failed attempt.
func (s *taskState) failed(cl *call, e *stateError, retries []int, now time.Time, rnd *rand.Rand) Step {
	counts, until, ok := s.retryAt(cl, e, retries, now, rnd)
	if !ok {
		return s.recover(cl, e)
	}
	t, err := s.prepare(cl)
	if err != nil {
		return s.recover(cl, err)
	}
	return Step{Kind: StepRetry, Until: until, Task: t, Retries: counts}
}

// retryAt finds the retrier for e: ok reports that the state runs again at
// until, with counts as the attempts used per retrier (and
// $$.State.RetryCount in cl set for the next attempt).
func (h *handlers) retryAt(cl *call, e *stateError, retries []int, now time.Time, rnd *rand.Rand) (counts []int, until time.Time, ok bool) {
	if terminal(e.name) {
		return nil, time.Time{}, false
	}
	for i, r := range h.retry {
		if !anyMatches(r.errorEquals, e.name) {
			continue
		}
		// Only the first matching retrier counts; once it is used up the
		// error goes to the catchers.
		counts := make([]int, len(h.retry))
		copy(counts, retries)
		if counts[i] >= r.maxAttempts {
			break
		}
		delay := r.delay(counts[i], rnd)
		counts[i]++
		cl.c.State.RetryCount = 0
		for _, n := range counts {
			cl.c.State.RetryCount += n
		}
		cl.resetCtx()
		return counts, now.Add(delay), true
	}
	return nil, time.Time{}, false
}

// delay is the wait before retry number attempt+1: IntervalSeconds ×
// BackoffRate^attempt, capped by MaxDelaySeconds, and with FULL jitter a
// uniformly random part of that. It is rounded to milliseconds.
func (r retrier) delay(attempt int, rnd *rand.Rand) time.Duration {
	d := float64(r.intervalSeconds) * math.Pow(r.backoffRate, float64(attempt))
	if r.maxDelaySeconds > 0 && d > float64(r.maxDelaySeconds) {
		d = float64(r.maxDelaySeconds)
	}
	if d > maxWaitSeconds {
		d = maxWaitSeconds
	}
	if r.fullJitter {
		if rnd != nil {
			d *= rnd.Float64()
		} else {
			d *= rand.Float64()
		}
	}
	return time.Duration(math.Round(d*1000)) * time.Millisecond
}

// recover sends an error to the first matching catcher, or fails the
// execution. It is used directly (without Retry) for errors of the state's
// own data processing: retrying them would give the same result.
func (h *handlers) recover(cl *call, e *stateError) Step {
	if terminal(e.name) {
		return failStep(e)
	}
	for _, c := range h.catch {
		if !anyMatches(c.errorEquals, e.name) {
			continue
		}
		caught := &TaskError{Name: e.name, Cause: e.cause}
		errOut := map[string]any{"Error": e.name, "Cause": e.cause}
		if h.jsonata {
			return c.jcatch(h.stateName, cl, errOut, caught)
		}
		out, err := c.resultPath.apply(cl.input, errOut)
		if err != nil {
			return failStep(asStateError(err))
		}
		b := encodeJSON(out)
		if len(b) > maxPayload {
			return failStep(&stateError{ErrDataLimitExceeded, fmt.Sprintf("The state '%s' caught an error but its output is larger than %d bytes", h.stateName, maxPayload)})
		}
		step, serr := withAssign(c.assign, errOut, cl, Step{Kind: StepNext, Next: c.next, Output: b, Caught: caught})
		if serr != nil {
			return failStep(serr)
		}
		return step
	}
	return failStep(e)
}
