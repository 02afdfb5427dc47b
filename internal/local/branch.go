package local

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/asl"
)

// Parallel and Map states run their branches (items) as child executions.
//
// A child is an execution like any other: a row in local_executions with
// its own current state, phase, timers, token and retry counters, loaded
// and resumed after a crash by the same code. What makes it a child is in
// its run record: the machine it runs (asl's Path of the branch's or the
// ItemProcessor's machine), the parent's ARN and its index in the parent's
// results. The parent waits in phaseBranches with the list of branches,
// how many are started and the outcome of each that ended.
//
// A child's end and the parent's bookkeeping (its result recorded, the next
// child started within MaxConcurrency, and once all have ended the state's
// Step from asl's BranchesDone) are one transaction, like every other
// transition: after a kill -9 each child is either still running, to be
// resumed, or ended and counted, never both, so each item runs once.
//
// Children write their history events into their top-level execution's
// history (as Step Functions shows an inline Map's iterations in the
// parent's history); they send no status-change events.

// sm is the machine ex runs.
func (ex *execution) sm() *asl.StateMachine {
	if ex.sub != nil {
		return ex.sub
	}
	return ex.m.sm
}

// root is the top-level execution ex belongs to (itself for one).
func (ex *execution) root() *execution {
	for ex.parent != nil {
		ex = ex.parent
	}
	return ex
}

// historyOf is the execution whose history ex's events go to, touched.
func (b *batch) historyOf(ex *execution) *execution {
	top := ex.root()
	if top != ex {
		b.touch(top)
	}
	return top
}

// taskKey names a Task state among all the machines of a definition.
func taskKey(machinePath, state string) string {
	if machinePath == "" {
		return state
	}
	return machinePath + "\x00" + state
}

// childARN names the i-th child of ex's current state in its current
// attempt (a Retry starts new children, with new names).
func childARN(ex *execution, attempt, i int) string {
	return ex.arn + "/" + ex.state + "/" + strconv.Itoa(attempt) + "/" + strconv.Itoa(i)
}

// startBranches puts ex in phaseBranches and starts the first children.
// more reports that the state is already done (no branches) and st follows.
func (b *batch) startBranches(ex *execution, branches []asl.Branch, maxConc int) (st asl.Step, more bool) {
	ex.phase, ex.wake, ex.task = phaseBranches, time.Time{}, nil
	ex.branches, ex.started, ex.maxConc = branches, 0, maxConc
	ex.results = make([]*asl.BranchResult, len(branches))
	ex.attempt++
	b.event(ex, ex.sm().StateType(ex.state)+"StateStarted", ex.state, detail{})
	if len(branches) == 0 {
		return b.branchesDone(ex), true
	}
	b.startMore(ex)
	return asl.Step{}, false
}

// startMore starts children until MaxConcurrency run (or all have started).
// A child that ends at once (only Pass states, say) calls it again through
// branchEnded: that call leaves the work to the loop already running, so
// a Map of n such items is a loop, not a recursion n deep.
func (b *batch) startMore(ex *execution) {
	if ex.starting {
		return
	}
	ex.starting = true
	defer func() { ex.starting = false }()
	for ex.started < len(ex.branches) && ex.status == longrun.StatusRunning && ex.phase == phaseBranches {
		if ex.maxConc > 0 && ex.started-ex.ended() >= ex.maxConc {
			return
		}
		i := ex.started
		ex.started++
		br := ex.branches[i]
		sub := ex.m.sm.Machine(br.Machine)
		if sub == nil {
			b.abort(fmt.Errorf("execution %s: state %q has no branch machine %q", ex.arn, ex.state, br.Machine))
			return
		}
		child := &execution{
			arn: childARN(ex, ex.attempt, i), name: ex.name, m: ex.m, input: br.Input, start: b.now,
			status: longrun.StatusRunning, created: true,
			sub: sub, parentARN: ex.arn, index: i, parent: ex,
		}
		if !br.Isolated {
			child.vars = ex.vars
		}
		b.e.execs[child.arn] = child
		b.touch(child)
		if ex.sm().StateType(ex.state) == "Map" {
			b.event(ex, "MapIterationStarted", ex.state, detail{pre: indexDetail(i, "", "")})
		}
		b.follow(child, b.enter(child, sub.StartAt(), br.Input))
	}
}

// ended counts the children of ex's state that have ended.
func (ex *execution) ended() int {
	n := 0
	for _, r := range ex.results {
		if r != nil {
			n++
		}
	}
	return n
}

// branchEnded records a child's end in its parent and moves the parent on.
func (b *batch) branchEnded(child *execution) {
	p := child.parent
	if p == nil || p.status != longrun.StatusRunning || p.phase != phaseBranches || child.index >= len(p.results) ||
		child.arn != childARN(p, p.attempt, child.index) {
		return // the parent moved on (it failed, timed out or was stopped)
	}
	b.touch(p)
	r := &asl.BranchResult{}
	switch child.status {
	case longrun.StatusSucceeded:
		r.Output = child.output
	default:
		r.Failed, r.Error, r.Cause = true, child.errName, child.cause
	}
	p.results[child.index] = r
	if p.sm().StateType(p.state) == "Map" {
		typ := "MapIterationSucceeded"
		if r.Failed {
			typ = "MapIterationFailed"
		}
		b.event(p, typ, p.state, detail{pre: indexDetail(child.index, r.Error, r.Cause)})
	}
	// A branch's failure ends the state at once (Step Functions stops the
	// other branches), unless the Map tolerates failures.
	tolerant := len(p.branches) > 0 && p.branches[0].Isolated
	if r.Failed && !tolerant {
		b.abortChildren(p)
		b.follow(p, b.branchesDone(p))
		return
	}
	if p.ended() < len(p.branches) {
		b.startMore(p)
		return
	}
	b.follow(p, b.branchesDone(p))
}

// branchesDone asks asl what follows the state's children. Only the
// outcomes known are passed: after a failure the others were stopped.
func (b *batch) branchesDone(ex *execution) asl.Step {
	results := make([]asl.BranchResult, 0, len(ex.results))
	for _, r := range ex.results {
		if r != nil {
			results = append(results, *r)
		}
	}
	tolerant := len(ex.branches) > 0 && ex.branches[0].Isolated
	if tolerant || len(results) == len(ex.branches) {
		results = results[:0]
		for _, r := range ex.results {
			results = append(results, *r)
		}
	} else {
		// The failed one decides; asl picks the first failure it is given.
		for _, r := range results {
			if r.Failed {
				results = []asl.BranchResult{r}
				break
			}
		}
	}
	ex.phase = phaseNone
	typ := ex.sm().StateType(ex.state)
	c := ex.context()
	st := ex.sm().BranchesDone(ex.state, ex.stateInput, results, ex.retries, &c, b.now, b.e.rnd)
	if st.Kind == asl.StepFail || st.Kind == asl.StepRetry || st.Caught != nil {
		b.event(ex, typ+"StateFailed", ex.state, detail{})
	} else {
		b.event(ex, typ+"StateSucceeded", ex.state, detail{})
	}
	return st
}

// abortChildren stops the running children of ex's state (and theirs).
func (b *batch) abortChildren(ex *execution) {
	prefix := ex.arn + "/" + ex.state + "/"
	for arn, child := range b.e.execs {
		if child.parent == ex && strings.HasPrefix(arn, prefix) && child.status == longrun.StatusRunning {
			b.touch(child)
			child.parent = nil // its end is not a result any more
			b.finish(child, longrun.StatusAborted, nil, "", "")
		}
	}
}

func indexDetail(i int, errName, cause string) []byte {
	d := map[string]any{"index": i}
	if errName != "" {
		d["error"], d["cause"] = errName, cause
	}
	out, _ := json.Marshal(d) // an int and strings always encode
	return out
}
