package asl

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Parallel and Map run sub-workflows: Enter returns StepBranches with one
// Branch per Parallel branch or Map item, the engine runs each as a child
// execution of the branch's machine (Machine(Branch.Machine)), and
// BranchesDone turns their outcomes into the state's result (ResultSelector,
// Assign, ResultPath, OutputPath) or error (Retry, Catch).
//
// https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html
// https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html
// https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html

// Branch is one child execution a Parallel or Map state asks for.
type Branch struct {
	// Machine is the Path of the machine the child runs.
	Machine string `json:"machine"`
	// Input is the child's input.
	Input json.RawMessage `json:"input"`
	// Isolated is set for a distributed Map's iterations: they are child
	// workflow executions that do not see the parent's variables.
	Isolated bool `json:"isolated,omitempty"`
}

// BranchResult is how a child execution ended: Output when it succeeded,
// Error and Cause when it failed.
type BranchResult struct {
	Failed bool            `json:"failed,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
	Error  string          `json:"error,omitempty"`
	Cause  string          `json:"cause,omitempty"`
}

// ErrBranchFailed and ErrToleratedFailure name the errors of Parallel and
// Map states.
const (
	ErrBranchFailed     = "States.BranchFailed"
	ErrToleratedFailure = "States.ExceedToleratedFailureThreshold"
)

// branching is what Parallel and Map share.
type branching struct {
	base
	handlers
	resultSelector *payload
	resultPath     *resultPath
}

// parallelState runs every branch on the same input; its result is the
// array of the branches' outputs, in branch order.
type parallelState struct {
	branching
	parameters *payload
	arguments  *jtemplate // JSONata
	branches   []string   // machine paths
}

// mapState runs its ItemProcessor once per item.
type mapState struct {
	branching
	processor          string // machine path
	itemsPath          *path
	itemSelector       *payload
	maxConcurrency     int
	maxConcurrencyPath *path
	distributed        bool
	toleratedCount     int
	toleratedPercent   float64
	toleratedCountPath *path
	toleratedPctPath   *path
	// JSONata
	items              *jtemplate
	itemSelectorJ      *jtemplate
	maxConcurrencyExpr *jexpr
	toleratedCountExpr *jexpr
	toleratedPctExpr   *jexpr
}

func parseBranching(f *fields, b base) branching {
	s := branching{base: b}
	f.transition(&s.base)
	s.addTarget("Next", s.next)
	s.inputPath = f.filter("InputPath")
	s.outputPath = f.filter("OutputPath")
	s.resultSelector = f.payload("ResultSelector")
	s.resultPath = f.resultPath("ResultPath")
	s.assign = f.assign("Assign")
	if f.jsonata {
		s.output = f.jtmpl("Output")
	}
	s.handlers = parseHandlers(f, &s.base)
	return s
}

func parseParallel(f *fields, b base, m *StateMachine) *parallelState {
	s := &parallelState{branching: parseBranching(f, b)}
	s.parameters = f.payload("Parameters")
	if f.jsonata {
		s.arguments = f.jtmpl("Arguments")
	}
	arr, ok := f.array("Branches")
	switch {
	case !ok && !f.has("Branches"):
		f.problem("Branches", "is required")
	case ok && len(arr) == 0:
		f.problem("Branches", "must have at least one branch")
	}
	for i, raw := range arr {
		at := fmt.Sprintf("Branches[%d]", i)
		obj, isObj := raw.(map[string]any)
		if !isObj {
			f.problem(at, "a branch must be an object with StartAt and States")
			continue
		}
		path := childPath(m, fmt.Sprintf("%s/%d", b.name, i))
		bf := newFields(f.ck, f.state, at+".", obj)
		parseMachine(f.ck, bf, m.root, path)
		s.branches = append(s.branches, path)
	}
	return s
}

func childPath(m *StateMachine, rel string) string {
	if m.path == "" {
		return rel
	}
	return m.path + "/" + rel
}

func parseMap(f *fields, b base, m *StateMachine) *mapState {
	s := &mapState{branching: parseBranching(f, b)}
	s.itemsPath = f.path("ItemsPath", true, true)
	if f.jsonata {
		s.items = f.jtmpl("Items")
		s.itemSelectorJ = f.jtmpl("ItemSelector")
	} else {
		s.itemSelector = f.payload("ItemSelector")
	}
	if f.has("Parameters") {
		if f.has("ItemSelector") {
			f.get("Parameters")
			f.problem("Parameters", "ItemSelector replaces Parameters in a Map: set only one of them")
		} else {
			s.itemSelector = f.payload("Parameters")
		}
	}
	s.maxConcurrency, s.maxConcurrencyExpr = f.jint("MaxConcurrency", 0, math.MaxInt32)
	s.maxConcurrencyPath = f.path("MaxConcurrencyPath", true, true)
	if f.has("MaxConcurrency") && f.has("MaxConcurrencyPath") {
		f.problem("MaxConcurrencyPath", "MaxConcurrency and MaxConcurrencyPath cannot both be set")
	}
	f.str("Label")

	procField := "ItemProcessor"
	if f.has("Iterator") {
		procField = "Iterator"
		if f.has("ItemProcessor") {
			f.get("ItemProcessor")
			f.problem("Iterator", "ItemProcessor replaces Iterator: set only one of them")
		}
	}
	proc, ok := f.object(procField)
	if !ok && !f.has(procField) {
		f.problem("ItemProcessor", "is required")
	}
	if proc != nil {
		pf := newFields(f.ck, f.state, procField+".", proc)
		if cfg, ok := pf.object("ProcessorConfig"); ok {
			cf := newFields(f.ck, f.state, procField+".ProcessorConfig.", cfg)
			if mode, ok := cf.str("Mode"); ok {
				switch mode {
				case "INLINE":
				case "DISTRIBUTED":
					s.distributed = true
				default:
					cf.problem("Mode", "must be INLINE or DISTRIBUTED, not %q", mode)
				}
			}
			if et, ok := cf.str("ExecutionType"); ok && et != "STANDARD" && et != "EXPRESS" {
				cf.problem("ExecutionType", "must be STANDARD or EXPRESS, not %q", et)
			}
			cf.finish()
		}
		s.processor = childPath(m, b.name)
		parseMachine(f.ck, pf, m.root, s.processor)
	}
	s.toleratedCount, s.toleratedCountExpr = f.jint("ToleratedFailureCount", 0, math.MaxInt32)
	if v, ok := f.obj["ToleratedFailurePercentage"].(string); ok {
		_, s.toleratedPctExpr = f.jstring("ToleratedFailurePercentage")
		if s.toleratedPctExpr == nil {
			f.problem("ToleratedFailurePercentage", "must be a number or a {%% expression %%}, not %q", v)
		}
	} else if v, ok := f.number("ToleratedFailurePercentage"); ok {
		if v < 0 || v > 100 {
			f.problem("ToleratedFailurePercentage", "must be from 0 to 100")
		}
		s.toleratedPercent = v
	}
	if !f.jsonata && (s.maxConcurrencyExpr != nil || s.toleratedCountExpr != nil || s.toleratedPctExpr != nil) {
		f.problem("MaxConcurrency", "a {%% %%} expression needs \"QueryLanguage\": \"JSONata\"")
	}
	s.toleratedCountPath = f.path("ToleratedFailureCountPath", true, true)
	s.toleratedPctPath = f.path("ToleratedFailurePercentagePath", true, true)
	if !s.distributed {
		for _, k := range []string{"ToleratedFailureCount", "ToleratedFailurePercentage", "ToleratedFailureCountPath", "ToleratedFailurePercentagePath", "Label"} {
			if f.has(k) {
				f.problem(k, "only a distributed Map (ProcessorConfig.Mode DISTRIBUTED) has %s", k)
			}
		}
	}
	return s
}

// enter of Parallel: every branch gets the effective input (after
// InputPath and Parameters).
func (s *parallelState) enter(cl *call) Step {
	if s.base.jsonata {
		in, err := s.branchInputJ(cl)
		if err != nil {
			return s.recover(cl, err)
		}
		step := Step{Kind: StepBranches}
		for _, p := range s.branches {
			step.Branches = append(step.Branches, Branch{Machine: p, Input: encodeJSON(in)})
		}
		return step
	}
	eff, err := s.inputPath.apply(cl.input, cl, "InputPath")
	if err != nil {
		return s.recover(cl, asStateError(err))
	}
	if s.parameters != nil {
		if eff, err = s.parameters.eval(eff, cl); err != nil {
			return s.recover(cl, asStateError(err))
		}
	}
	in := encodeJSON(eff)
	step := Step{Kind: StepBranches}
	for _, p := range s.branches {
		step.Branches = append(step.Branches, Branch{Machine: p, Input: in})
	}
	return step
}

// enter of Map: one branch per item of ItemsPath, each item through
// ItemSelector (where $$.Map.Item.Index and .Value are the item's).
func (s *mapState) enter(cl *call) Step {
	step, err := s.prepare(cl)
	if err != nil {
		return s.recover(cl, err)
	}
	if len(step.Branches) == 0 {
		return s.done(cl, nil, nil, time.Time{}, nil)
	}
	return step
}

func (s *mapState) prepare(cl *call) (Step, *stateError) {
	if s.base.jsonata {
		return s.prepareJ(cl)
	}
	eff, err := s.inputPath.apply(cl.input, cl, "InputPath")
	if err != nil {
		return Step{}, asStateError(err)
	}
	items := eff
	if s.itemsPath != nil {
		if items, err = s.itemsPath.get(eff, cl); err != nil {
			return Step{}, &stateError{ErrRuntime, fmt.Sprintf("Invalid path '%s' in ItemsPath: the path selects nothing", s.itemsPath.src)}
		}
	}
	arr, ok := items.([]any)
	if !ok {
		return Step{}, &stateError{ErrRuntime, fmt.Sprintf("The Map state '%s' needs an array of items, not a %s", s.name, jsonType(items))}
	}
	mc := s.maxConcurrency
	if s.maxConcurrencyPath != nil {
		if mc, err = countAt(s.maxConcurrencyPath, eff, cl, "MaxConcurrencyPath"); err != nil {
			return Step{}, asStateError(err)
		}
	}
	step := Step{Kind: StepBranches, MaxConcurrency: mc, Branches: make([]Branch, 0, len(arr))}
	saved := cl.c.Map
	defer func() { cl.c.Map = saved; cl.resetCtx() }()
	for i, item := range arr {
		in := item
		if s.itemSelector != nil {
			cl.c.Map = &MapContext{Item: MapItem{Index: i, Value: encodeJSON(item)}}
			cl.resetCtx()
			if in, err = s.itemSelector.eval(eff, cl); err != nil {
				return Step{}, asStateError(err)
			}
		}
		step.Branches = append(step.Branches, Branch{Machine: s.processor, Input: encodeJSON(in), Isolated: s.distributed})
	}
	return step, nil
}

func countAt(p *path, eff any, cl *call, field string) (int, error) {
	v, err := p.get(eff, cl)
	if err != nil {
		return 0, &stateError{ErrRuntime, fmt.Sprintf("Invalid path '%s' in %s: the path selects nothing", p.src, field)}
	}
	n, ok := v.(json.Number)
	x, ferr := n.Float64()
	if !ok || ferr != nil || x != math.Trunc(x) || x < 0 || x > math.MaxInt32 {
		return 0, &stateError{ErrRuntime, fmt.Sprintf("%s '%s' must select a non-negative integer, not %s", field, p.src, encodeJSON(v))}
	}
	return int(x), nil
}

// done applies the branches' outcomes. For Map, a failure within the
// tolerated count or percentage leaves the failed item's error object
// ({"Error","Cause"}) at its place in the result.
func (s *mapState) done(cl *call, results []BranchResult, retries []int, now time.Time, rnd *rand.Rand) Step {
	if s.distributed {
		if serr := s.tolerate(cl, results); serr != nil {
			return s.failedBranches(cl, serr, retries, now, rnd, s.retryStep)
		}
		out := make([]any, len(results))
		for i, r := range results {
			if r.Failed {
				out[i] = map[string]any{"Error": r.Error, "Cause": r.Cause}
				continue
			}
			v, err := decodeJSON(r.Output)
			if err != nil {
				return failStep(&stateError{ErrRuntime, fmt.Sprintf("iteration %d's output is not JSON: %v", i, err)})
			}
			out[i] = v
		}
		return s.succeeded(cl, out)
	}
	return s.branching.done(cl, results, retries, now, rnd, s.retryStep)
}

func (s *mapState) tolerate(cl *call, results []BranchResult) *stateError {
	failed := 0
	for _, r := range results {
		if r.Failed {
			failed++
		}
	}
	if failed == 0 {
		return nil
	}
	eff, _ := s.inputPath.apply(cl.input, cl, "InputPath")
	count, pct := s.toleratedCount, s.toleratedPercent
	var err error
	if s.toleratedCountExpr != nil {
		n, serr := jnumber(s.toleratedCountExpr, newJEnv(cl), "ToleratedFailureCount", 0, math.MaxInt32)
		if serr != nil {
			return serr
		}
		count = n
	}
	if s.toleratedPctExpr != nil {
		n, serr := jnumber(s.toleratedPctExpr, newJEnv(cl), "ToleratedFailurePercentage", 0, 100)
		if serr != nil {
			return serr
		}
		pct = float64(n)
	}
	if s.toleratedCountPath != nil {
		if count, err = countAt(s.toleratedCountPath, eff, cl, "ToleratedFailureCountPath"); err != nil {
			return asStateError(err)
		}
	}
	if s.toleratedPctPath != nil {
		n, err := countAt(s.toleratedPctPath, eff, cl, "ToleratedFailurePercentagePath")
		if err != nil {
			return asStateError(err)
		}
		pct = float64(n)
	}
	if failed <= count || float64(failed)*100 <= pct*float64(len(results)) {
		return nil
	}
	return &stateError{ErrToleratedFailure, fmt.Sprintf("The specified tolerated failure threshold was exceeded: %d of %d items failed", failed, len(results))}
}

func (s *mapState) retryStep(cl *call) (Step, *stateError) { return s.prepare(cl) }

func (s *parallelState) retryStep(cl *call) (Step, *stateError) {
	st := s.enter(cl)
	if st.Kind != StepBranches {
		return Step{}, &stateError{st.Error, st.Cause}
	}
	return st, nil
}

func (s *parallelState) done(cl *call, results []BranchResult, retries []int, now time.Time, rnd *rand.Rand) Step {
	return s.branching.done(cl, results, retries, now, rnd, s.retryStep)
}

// done: all branches succeeded → the array of their outputs is the
// result; otherwise the failure of the first failed branch (in branch or
// item order) is the state's error, through Retry and Catch.
func (s *branching) done(cl *call, results []BranchResult, retries []int, now time.Time, rnd *rand.Rand, again func(*call) (Step, *stateError)) Step {
	out := make([]any, len(results))
	for i, r := range results {
		if r.Failed {
			return s.failedBranches(cl, &stateError{r.Error, r.Cause}, retries, now, rnd, again)
		}
		v, err := decodeJSON(r.Output)
		if err != nil {
			return failStep(&stateError{ErrRuntime, fmt.Sprintf("branch %d's output is not JSON: %v", i, err)})
		}
		out[i] = v
	}
	return s.succeeded(cl, out)
}

func (s *branching) failedBranches(cl *call, e *stateError, retries []int, now time.Time, rnd *rand.Rand, again ...func(*call) (Step, *stateError)) Step {
	if len(again) > 0 {
		if counts, until, ok := s.retryAt(cl, e, retries, now, rnd); ok {
			st, err := again[0](cl)
			if err != nil {
				return s.recover(cl, err)
			}
			return Step{Kind: StepRetry, Until: until, Branches: st.Branches, MaxConcurrency: st.MaxConcurrency, Retries: counts}
		}
	}
	return s.recover(cl, e)
}

func (s *branching) succeeded(cl *call, result any) Step {
	return applyResult(&s.base, &s.handlers, s.resultSelector, s.resultPath, cl, result)
}
