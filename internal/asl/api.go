// Package asl owns the Amazon States Language interpreter: it parses and
// validates a state machine definition (the JSONPath and JSONata query
// languages, workflow variables, every state type, per states-language.net
// and the AWS Step Functions documentation) and steps through it one state
// at a time.
//
// The stepping API (Enter, TaskSucceeded, TaskFailed, BranchesDone) is pure:
// it reads a state's input, the context object and the workflow variables
// and says what happens next as a Step. It never sleeps, never runs a task
// or a branch and keeps no state between calls, so a durable engine
// (internal/local) can persist each Step and continue after a crash.
// Parallel branches and Map iterations are machines of their own (Machine),
// run by the engine as child executions. Run is the in-memory runner built
// only on those methods, used by `longrun asl run` and by this package's
// conformance tests.
//
// Errors that the language turns into States.* errors (a path that selects
// nothing, an intrinsic function that fails, no Choice rule matching, ...)
// are not Go errors: they become a Step (StepFail, or a Retry/Catch of the
// state where the language allows it). A Go error from the stepping API
// means misuse, such as an unknown state name.
package asl

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/longrun/longrun"
)

// StateMachine is a parsed and validated definition. It is immutable and safe
// for concurrent use.
type StateMachine struct {
	startAt        string
	timeoutSeconds int
	states         map[string]state
	// path names a nested machine in its root (Machine): "" for the top,
	// "Fan/0" for branch 0 of Parallel state Fan, "Each" for Map state
	// Each's ItemProcessor, "Fan/0/Each" nested further.
	path     string
	root     *StateMachine
	machines map[string]*StateMachine // the root's index of every machine by path
}

// Path names m in its top-level machine: "" for the top-level one. A
// durable engine stores it to find a branch's machine again with Machine.
func (m *StateMachine) Path() string { return m.path }

// Machine returns the machine named path (see Path) among m's top-level
// machine and all the Parallel branches and Map processors nested in it,
// or nil.
func (m *StateMachine) Machine(path string) *StateMachine { return m.root.machines[path] }

// Parse parses and validates a definition (after Substitute, if it has
// DefinitionSubstitutions). If the definition is not one this package can run
// exactly as Step Functions would, the error is a *ValidationError listing
// every problem found, not only the first; anything unsupported (ItemReader,
// ResultWriter, Credentials, unknown fields, ...) is such a problem.
func Parse(def []byte) (*StateMachine, error) { return parse(def) }

// Problem is one reason a definition cannot be run. State is "" for problems
// of the top level; Field names the offending field as written in the
// definition ("Retry[1].ErrorEquals", "Choices[0].And[2].Variable").
type Problem struct {
	State   string `json:"state,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.State != "" {
		fmt.Fprintf(&b, "state %q: ", p.State)
	}
	if p.Field != "" {
		fmt.Fprintf(&b, "%s: ", p.Field)
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists all the problems of a definition.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	lines := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		lines = append(lines, p.String())
	}
	return fmt.Sprintf("invalid state machine definition (%d problems): %s", len(e.Problems), strings.Join(lines, "; "))
}

// Substitute applies CloudFormation/SAM DefinitionSubstitutions: every
// ${Name} in def is replaced by subs[Name]. A ${Name} with no value is an
// error naming it. Values are JSON-string escaped (they land inside JSON
// strings in practice; numbers and ARNs are unchanged by the escaping).
func Substitute(def []byte, subs map[string]string) ([]byte, error) {
	return substitute(def, subs)
}

// StartAt returns the name of the first state.
func (m *StateMachine) StartAt() string { return m.startAt }

// TimeoutSeconds returns the top-level TimeoutSeconds; 0 means none.
func (m *StateMachine) TimeoutSeconds() int { return m.timeoutSeconds }

// StateType returns the Type of the named state ("Task", "Pass", ...), or ""
// if there is no such state. Engines use it to name history events
// (TaskStateEntered, PassStateExited, ...).
func (m *StateMachine) StateType(name string) string {
	s, ok := m.states[name]
	if !ok {
		return ""
	}
	return s.common().typ
}

// Pattern returns the integration pattern of a Task state ("" for other
// states), so an engine knows to make a task token before calling Enter.
func (m *StateMachine) Pattern(name string) Pattern {
	if t, ok := m.states[name].(*taskState); ok {
		return t.pattern
	}
	return ""
}

// Context is the context object, `$$` in paths. The JSON field names are
// those of Step Functions. The stepping methods read it and never modify the
// caller's copy; they set State.Name to the state they are called for, and
// Enter sets State.EnteredTime to now when it is zero. The engine owns
// Execution, StateMachine, State.RetryCount and Task.Token.
type Context struct {
	Execution    ExecutionContext    `json:"Execution"`
	StateMachine StateMachineContext `json:"StateMachine"`
	State        StateContext        `json:"State"`
	Task         TaskContext         `json:"Task"`
	// Map is $$.Map inside a Map iteration (nil elsewhere).
	Map *MapContext `json:"Map,omitempty"`
	// Variables is the JSON object of the workflow variables the state
	// sees (nil: none). The engine keeps the Variables of the last Step
	// that had some and passes them to every later state; a Parallel
	// branch or Map iteration starts with its parent's.
	Variables json.RawMessage `json:"-"`
}

// MapContext is $$.Map.
type MapContext struct {
	Item MapItem `json:"Item"`
}

// MapItem is $$.Map.Item: the iteration's index and item (before
// ItemSelector).
type MapItem struct {
	Index int             `json:"Index"`
	Value json.RawMessage `json:"Value"`
}

// ExecutionContext is $$.Execution.
type ExecutionContext struct {
	ID        string          `json:"Id"`
	Name      string          `json:"Name"`
	Input     json.RawMessage `json:"Input"`
	StartTime time.Time       `json:"StartTime"`
	RoleArn   string          `json:"RoleArn"`
}

// StateMachineContext is $$.StateMachine.
type StateMachineContext struct {
	ID   string `json:"Id"`
	Name string `json:"Name"`
}

// StateContext is $$.State.
type StateContext struct {
	Name        string    `json:"Name"`
	EnteredTime time.Time `json:"EnteredTime"`
	// RetryCount is how many times the current state's task has been
	// retried (0 on the first attempt).
	RetryCount int `json:"RetryCount"`
}

// TaskContext is $$.Task. Token is set only for WaitForTaskToken tasks.
type TaskContext struct {
	Token string `json:"Token,omitempty"`
}

// StepKind says what a Step asks of the engine.
type StepKind int

const (
	// StepNext: enter state Next with Output as its input.
	StepNext StepKind = iota + 1
	// StepSucceed: the execution succeeded with Output.
	StepSucceed
	// StepFail: the execution failed with Error and Cause.
	StepFail
	// StepWait: a Wait state; at Until, enter Next with Output as its input
	// (or, when Next is "", a Wait with End: the execution succeeds with
	// Output).
	StepWait
	// StepTask: run Task; then call TaskSucceeded or TaskFailed (a timeout is
	// TaskFailed with States.Timeout or States.HeartbeatTimeout).
	StepTask
	// StepRetry: a retrier matched a task failure; at Until run Task again
	// (for Parallel and Map: run Branches again) and keep Retries for the
	// next TaskFailed (BranchesDone) of this state.
	StepRetry
	// StepBranches: a Parallel or Map state; run each of Branches as a
	// child execution, at most MaxConcurrency at once (0: no limit), then
	// call BranchesDone with their outcomes in the same order.
	StepBranches
)

var stepKindNames = map[StepKind]string{
	StepNext: "Next", StepSucceed: "Succeed", StepFail: "Fail",
	StepWait: "Wait", StepTask: "Task", StepRetry: "Retry", StepBranches: "Branches",
}

// MarshalText writes a StepKind by name ("Task"), so persisted Steps read
// well.
func (k StepKind) MarshalText() ([]byte, error) {
	if _, ok := stepKindNames[k]; !ok {
		return nil, fmt.Errorf("asl: unknown step kind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads what MarshalText wrote.
func (k *StepKind) UnmarshalText(b []byte) error {
	for kind, name := range stepKindNames {
		if name == string(b) {
			*k = kind
			return nil
		}
	}
	return fmt.Errorf("asl: unknown step kind %q", b)
}

func (k StepKind) String() string {
	if s, ok := stepKindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("StepKind(%d)", int(k))
}

// Step is the outcome of Enter, TaskSucceeded or TaskFailed.
type Step struct {
	Kind StepKind `json:"kind"`
	// Next is the state to enter (StepNext; StepWait when the wait ends,
	// "" if the Wait state ends the execution).
	Next string `json:"next,omitempty"`
	// Output is the next state's input (StepNext, StepWait) or the
	// execution's output (StepSucceed).
	Output json.RawMessage `json:"output,omitempty"`
	// Until is when the wait ends (StepWait) or when to run the task again
	// (StepRetry).
	Until time.Time `json:"until,omitzero"`
	// Error and Cause are the execution's error (StepFail).
	Error string `json:"error,omitempty"`
	Cause string `json:"cause,omitempty"`
	// Task is the task to run (StepTask, StepRetry).
	Task *Task `json:"task,omitempty"`
	// Retries counts the attempts used per retrier of the state (index =
	// position in Retry). The engine persists it between attempts and passes
	// it back to TaskFailed; nil means none used. Set on StepRetry.
	Retries []int `json:"retries,omitempty"`
	// Caught is the ErrorEquals-matching error when a Catch moved the
	// execution to Next (StepNext), so an engine can record it in history.
	Caught *TaskError `json:"caught,omitempty"`
	// Branches are the child executions to run (StepBranches, and
	// StepRetry of a Parallel or Map state), MaxConcurrency how many may
	// run at once (0: all).
	Branches       []Branch `json:"branches,omitempty"`
	MaxConcurrency int      `json:"maxConcurrency,omitempty"`
	// Variables, when not nil, is the JSON object of all the workflow
	// variables after this state's Assign (StepNext, StepSucceed,
	// StepWait): the engine passes it as Context.Variables from then on.
	Variables json.RawMessage `json:"variables,omitempty"`
}

// Pattern is a Task's service integration pattern.
type Pattern string

const (
	// RequestResponse: the task's result is the call's response.
	RequestResponse Pattern = "RequestResponse"
	// WaitForTaskToken (".waitForTaskToken"): the call hands out
	// $$.Task.Token; the result comes from SendTaskSuccess/Failure.
	WaitForTaskToken Pattern = "WaitForTaskToken"
	// RunJob (".sync"): the call starts a job and the result is the job's.
	RunJob Pattern = "RunJob"
)

// Task is one attempt of a Task state, as the engine must run it.
type Task struct {
	State string `json:"state"`
	// Resource is the state's Resource with ".waitForTaskToken" or ".sync"
	// stripped (Pattern says which it was).
	Resource string  `json:"resource"`
	Pattern  Pattern `json:"pattern"`
	// Parameters is the effective input: the state input after InputPath and
	// Parameters, with `$$` paths resolved against the Context given (so for
	// WaitForTaskToken the engine puts the attempt's token in
	// Context.Task.Token before calling Enter or TaskFailed).
	Parameters json.RawMessage `json:"parameters"`
	// TimeoutSeconds and HeartbeatSeconds are resolved (including the
	// ...Path forms); 0 means none. Without a TimeoutSeconds Step Functions
	// waits up to a year; engines should apply their own bound.
	TimeoutSeconds   int `json:"timeoutSeconds,omitempty"`
	HeartbeatSeconds int `json:"heartbeatSeconds,omitempty"`
}

// Error names of the language (the ones this package raises or matches
// specially).
const (
	ErrAll                  = "States.ALL"
	ErrTimeout              = "States.Timeout"
	ErrHeartbeatTimeout     = "States.HeartbeatTimeout"
	ErrTaskFailed           = "States.TaskFailed"
	ErrRuntime              = "States.Runtime"
	ErrNoChoiceMatched      = "States.NoChoiceMatched"
	ErrParameterPathFailure = "States.ParameterPathFailure"
	ErrResultPathMatch      = "States.ResultPathMatchFailure"
	ErrIntrinsicFailure     = "States.IntrinsicFailure"
	ErrDataLimitExceeded    = "States.DataLimitExceeded"
	ErrPermissions          = "States.Permissions"
)

// TaskError is a named error with a cause: a task's failure as reported to
// TaskFailed (an Invoke returning *TaskError), or an error a Catch caught.
type TaskError struct {
	Name  string `json:"Error"`
	Cause string `json:"Cause"`
}

func (e *TaskError) Error() string {
	if e.Cause == "" {
		return e.Name
	}
	return e.Name + ": " + e.Cause
}

// Enter enters state name with input and returns what happens next: the
// state's complete outcome for Pass, Choice, Wait, Succeed and Fail; for a
// Task, StepTask with the task to run (or, if preparing it fails, the
// state's Catch or StepFail). For a WaitForTaskToken task (see Pattern) the
// engine puts the attempt's token in c.Task.Token first. now is the time the state is entered (Wait
// states count from it). The only Go error is an unknown state name.
//
// Errors raised while preparing a Task (States.ParameterPathFailure,
// States.IntrinsicFailure, ...) go through the state's Catch but not its
// Retry: retrying would evaluate the same input the same way.
func (m *StateMachine) Enter(name string, input json.RawMessage, c *Context, now time.Time) (Step, error) {
	return m.enter(name, input, c, now)
}

// TaskSucceeded applies a Task state's ResultSelector, ResultPath and
// OutputPath to the task's result and returns StepNext or StepSucceed (or,
// if that processing fails, the state's Catch or StepFail; these errors are
// not retried, for they would need the task to run again). input is the
// state's input as given to Enter (input or result that is not JSON is
// States.Runtime). It panics if name is not a Task state: that is a bug.
func (m *StateMachine) TaskSucceeded(name string, input, result json.RawMessage, c *Context) Step {
	return m.taskSucceeded(name, input, result, c)
}

// TaskFailed applies a Task state's Retry and Catch to a failed attempt:
// StepRetry (Until from IntervalSeconds, BackoffRate, MaxDelaySeconds and
// JitterStrategy, drawing jitter from rnd; Task prepared again with
// State.RetryCount set to the retries made), StepNext through a catcher
// (the error object {"Error","Cause"} placed at its ResultPath), or
// StepFail. retries is the Retries of the previous StepRetry of this state
// (nil on the first failure). now is when the attempt failed. It panics if
// name is not a Task state.
func (m *StateMachine) TaskFailed(name string, input json.RawMessage, errName, cause string, retries []int, c *Context, now time.Time, rnd *rand.Rand) Step {
	return m.taskFailed(name, input, errName, cause, retries, c, now, rnd)
}

// BranchesDone applies a Parallel or Map state's child executions'
// outcomes (in the order of the Branches of its StepBranches): the array of
// their outputs through ResultSelector, Assign, ResultPath and OutputPath,
// or the first failure (for a distributed Map, once more fail than it
// tolerates: States.ExceedToleratedFailureThreshold) through Retry and
// Catch. Like TaskFailed it takes the Retries of the previous StepRetry.
// It panics if name is not a Parallel or Map state.
func (m *StateMachine) BranchesDone(name string, input json.RawMessage, results []BranchResult, retries []int, c *Context, now time.Time, rnd *rand.Rand) Step {
	s, cl, err := m.newCall(name, input, c)
	if err != nil {
		return failStep(&stateError{ErrRuntime, err.Error()})
	}
	switch s := s.(type) {
	case *parallelState:
		return s.done(cl, results, retries, now, rnd)
	case *mapState:
		return s.done(cl, results, retries, now, rnd)
	}
	panic(fmt.Sprintf("asl: %q is not a Parallel or Map state", name))
}

// RunOptions configures Run. Only Invoke is required.
type RunOptions struct {
	// Invoke runs one task attempt. token is $$.Task.Token for
	// WaitForTaskToken tasks ("" otherwise); the returned JSON is the task's
	// result (for WaitForTaskToken, what SendTaskSuccess would send). A
	// *TaskError is the task's failure (its Name can be States.Timeout or
	// States.HeartbeatTimeout); any other error is a task failure named
	// States.TaskFailed. The ctx carries the task's TimeoutSeconds as a
	// deadline; exceeding it is States.Timeout.
	Invoke func(ctx context.Context, t *Task, token string) (json.RawMessage, error)
	// Clock is the execution's time: Now stamps states and history, and
	// Waits and retry backoffs wait on Until (longrun.SystemClock if nil).
	// Tests pass one that records each wait and ends it at once.
	Clock longrun.Clock
	// Rand draws retry jitter (a time-seeded one if nil).
	Rand *rand.Rand
	// Context is the initial context object; Run fills Execution.Input,
	// Execution.StartTime (if zero) and the State and Task parts.
	Context Context
	// NewToken makes task tokens (random UUIDs if nil).
	NewToken func() string
}

// Execution statuses of a Result, as Step Functions names them.
const (
	StatusSucceeded = "SUCCEEDED"
	StatusFailed    = "FAILED"
	StatusTimedOut  = "TIMED_OUT"
)

// Result is how an execution run by Run ended.
type Result struct {
	Status  string          `json:"status"`
	Output  json.RawMessage `json:"output,omitempty"`
	Error   string          `json:"error,omitempty"`
	Cause   string          `json:"cause,omitempty"`
	History []HistoryEvent  `json:"history"`
}

// HistoryEvent is one event of an execution's history, named as in Step
// Functions' GetExecutionHistory: ExecutionStarted, TaskStateEntered,
// TaskScheduled, TaskSucceeded, TaskFailed, TaskTimedOut, TaskStateExited,
// PassStateEntered, ChoiceStateExited, WaitStateEntered, FailStateEntered,
// ExecutionSucceeded, ExecutionFailed, ExecutionTimedOut, ...
type HistoryEvent struct {
	ID        int64           `json:"id"`
	Timestamp time.Time       `json:"timestamp"`
	Type      string          `json:"type"`
	State     string          `json:"state,omitempty"`
	Detail    json.RawMessage `json:"detail,omitempty"`
}

// Run runs the state machine in memory from StartAt to the end, using only
// Enter, TaskSucceeded and TaskFailed, so what it shows is what the durable
// engine does. It honours the top-level TimeoutSeconds (Status TIMED_OUT).
// The Go error is only for a cancelled ctx or misuse; an execution that
// fails is a Result with Status FAILED.
func Run(ctx context.Context, m *StateMachine, input json.RawMessage, o RunOptions) (*Result, error) {
	return run(ctx, m, input, o)
}

// MockInvoke answers tasks from a mock file, in the idea of Step Functions
// Local's mock configuration: {"StateName": [{"Return": <json>} |
// {"Throw": {"Error": "...", "Cause": "..."}}, ...]}. Each state's answers
// are used in order and the last one repeats. A state with no answers fails
// with States.TaskFailed. The returned function is safe for concurrent use.
func LoadMock(data []byte) (Invoke func(ctx context.Context, t *Task, token string) (json.RawMessage, error), err error) {
	return loadMock(data)
}
