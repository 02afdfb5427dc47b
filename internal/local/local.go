// Package local owns the durable embedded engine behind `longrun dev`: it
// runs statemachine/longrun.asl.json and deliver.asl.json as Step Functions
// would, on the SQLite file the rest of the local app uses, and survives
// kill -9.
//
// The engine steps definitions with internal/asl's pure stepping API and
// persists every Step: each execution's current state, phase, timers and
// pending task token live in local_executions, its history in
// local_history, status-change events waiting for their function in
// local_outbox. One goroutine (Run) owns all running executions in memory and
// applies every change — starts, task completions, heartbeats, stops, timer
// expiries, Lambda results — in group commits: it drains whatever is ready,
// steps those executions in memory, then writes the whole batch in one
// transaction that holds only SQL, so the cost of a commit is shared by many
// transitions and the single SQLite writer is free while the engine thinks.
// While one batch commits the next is stepped on top of it (pipelined: at
// most one committing, one being stepped), and written once the first has
// committed; if the first fails, the next is undone with it.
// Nothing sleeps in line; timers wait on an injected clock. If a commit
// fails, its changes are retried one at a time, so an execution whose
// writes keep failing is set aside (it resumes at the next start) instead
// of stalling the others.
//
// Integrations are those of Step Functions, exactly:
//
//   - arn:aws:states:::sqs:sendMessage and .waitForTaskToken: the message is
//     sent in the same transaction as the state change when the queue can
//     (TxQueue, the local SQLite queue), so a crash neither loses nor
//     duplicates it;
//   - arn:aws:states:::lambda:invoke, to in-process functions: run after the
//     transition commits and recorded after (at-least-once, as Lambda is).
//
// Any other resource is refused by New, naming the state.
package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/asl"
	"github.com/longrun/longrun/internal/jsonscan"
)

// DB is the SQLite file the engine keeps its tables in: *sqlite.DB.
type DB interface {
	Migrate(ctx context.Context, name string, fsys fs.FS) error
	Write(ctx context.Context, fn func(tx *sql.Tx) error) error
	Read(ctx context.Context, fn func(tx *sql.Tx) error) error
}

// TxQueue is a queue that can take a message inside the engine's own write
// transaction (*sqlite.Queue): the task message and the state change then
// commit together, and the queue wakes its receivers after the commit. A
// queue in Config.Queues that is not a TxQueue is sent to after the
// transition commits, at least once (a crash between the send and its
// record sends the message again; the worker then finds the token gone).
type TxQueue interface {
	// SendTx adds a message in tx and returns its MessageId.
	SendTx(ctx context.Context, tx *sql.Tx, body string) (messageID string, err error)
}

// txDeleter is a TxQueue that can also delete a message in the engine's
// transaction (*sqlite.Queue): a task's message is deleted with the task's
// answer, so the worker's own Delete that follows has nothing to write.
type txDeleter interface {
	DeleteTx(ctx context.Context, tx *sql.Tx, messageID string) error
}

// Function is an in-process Lambda function, the target of lambda:invoke and
// of status-change rules. A returned error (or a panic) fails the task as
// the Go Lambda runtime reports it: Error is the error's type name (or a
// messages.InvokeResponse_Error's Type), Cause {"errorMessage","errorType"}.
type Function func(ctx context.Context, payload json.RawMessage) (json.RawMessage, error)

// Machine is one state machine the engine runs.
type Machine struct {
	Name string // e.g. "longrun"; Start and StatusRule refer to it
	ARN  string // arn:aws:states:<region>:<account>:stateMachine:<name>
	// Definition is the ASL JSON with its DefinitionSubstitutions applied
	// (asl.Substitute).
	Definition []byte
}

// StatusRule is an EventBridge rule on "Step Functions Execution Status
// Change" events: executions of Machine reaching one of Statuses are
// delivered to Function with the event's shape (see StatusEvent).
type StatusRule struct {
	Machine  string
	Statuses []longrun.Status
	Function string // a key of Config.Functions
}

// Config is what New needs. DB and Machines are required.
type Config struct {
	DB     DB
	Clock  longrun.Clock // default longrun.SystemClock; pass the DB's clock so queue and engine agree
	Logger *slog.Logger  // default: discard
	Rand   *rand.Rand    // retry jitter; default time-seeded. Used by Run's goroutine only.

	Machines []Machine
	// Main is the Machine that StartExecution runs; Deliver the one Redeliver
	// runs. Either may be "" if not used.
	Main, Deliver string

	// Functions are lambda:invoke targets, keyed by function name or ARN
	// (a FunctionName ARN also finds its function by name).
	Functions map[string]Function
	// Queues are sqs:sendMessage targets, keyed by QueueUrl.
	Queues map[string]longrun.Queue

	StatusRules []StatusRule
}

// integration is what a Task state's Resource runs.
type integration uint8

const (
	sqsSend integration = iota + 1
	lambdaInvoke
)

// Resources the engine runs; anything else is refused at load.
const (
	resourceSendMessage = "arn:aws:states:::sqs:sendMessage"
	resourceInvoke      = "arn:aws:states:::lambda:invoke"
)

// machine is a loaded Machine.
type machine struct {
	name, arn string
	region    string
	account   string
	sm        *asl.StateMachine
	// tasks maps each Task state to how it runs; its queue or function is
	// resolved at load when static.
	tasks map[string]*taskTarget
	rules map[longrun.Status][]string // status → functions
}

type taskTarget struct {
	kind     integration
	pattern  asl.Pattern
	queue    longrun.Queue // static QueueUrl
	txq      TxQueue
	function Function // static FunctionName
	// queues are the engine's queues when the QueueUrl comes from the
	// state ("QueueUrl.$"): resolved per task from its parameters.
	queues map[string]longrun.Queue
}

// errNoQueue is the error of a task whose QueueUrl.$ names no queue of the
// engine: Step Functions' name for SQS's answer to an unknown queue.
const errNoQueue = "SQS.QueueDoesNotExistException"

// target returns the queue a send task's evaluated parameters go to (and
// the same queue as a TxQueue when it can join the engine's transaction).
func (t *taskTarget) target(params json.RawMessage) (longrun.Queue, TxQueue, error) {
	if t.queues == nil {
		return t.queue, t.txq, nil
	}
	// Scanned, not decoded: QueueUrl comes after the MessageBody, which
	// holds the payload, and this runs on the engine's goroutine.
	raw, _, err := jsonscan.Field(params, "QueueUrl")
	var url string
	if err == nil && raw != nil {
		err = json.Unmarshal(raw, &url)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sqs:sendMessage parameters: %w", err)
	}
	q, ok := t.queues[url]
	if !ok {
		return nil, nil, fmt.Errorf("the specified queue does not exist: QueueUrl %q is not a queue of the local engine", url)
	}
	txq, _ := q.(TxQueue)
	return q, txq, nil
}

// New loads the machines and migrates the engine's tables. It refuses a
// definition it cannot run exactly as Step Functions would: the error names
// the state and the resource or field.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.DB == nil {
		return nil, errors.New("local engine: Config.DB is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = longrun.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	e := newEngine(cfg)
	for _, mc := range cfg.Machines {
		m, err := loadMachine(mc, cfg)
		if err != nil {
			return nil, err
		}
		if _, dup := e.machines[m.name]; dup {
			return nil, fmt.Errorf("local engine: two machines named %q", m.name)
		}
		e.machines[m.name] = m
		e.machinesByARN[m.arn] = m
	}
	for _, name := range []string{cfg.Main, cfg.Deliver} {
		if _, ok := e.machines[name]; name != "" && !ok {
			return nil, fmt.Errorf("local engine: no machine named %q", name)
		}
	}
	for i, r := range cfg.StatusRules {
		m, ok := e.machines[r.Machine]
		if !ok {
			return nil, fmt.Errorf("local engine: status rule %d: no machine named %q", i, r.Machine)
		}
		if _, ok := cfg.Functions[r.Function]; !ok {
			return nil, fmt.Errorf("local engine: status rule %d: no function %q", i, r.Function)
		}
		for _, s := range r.Statuses {
			if !s.Valid() {
				return nil, fmt.Errorf("local engine: status rule %d: %q is not a status", i, s)
			}
			m.rules[s] = append(m.rules[s], r.Function)
		}
	}
	sub, err := fs.Sub(migrations, "migration")
	if err != nil {
		return nil, fmt.Errorf("local engine migrations: %w", err)
	}
	if err := cfg.DB.Migrate(ctx, migrationSet, sub); err != nil {
		return nil, fmt.Errorf("local engine: %w", err)
	}
	return e, nil
}

func loadMachine(mc Machine, cfg Config) (*machine, error) {
	parts := strings.Split(mc.ARN, ":")
	if len(parts) != 7 || parts[0] != "arn" || parts[2] != "states" || parts[5] != "stateMachine" || parts[6] == "" {
		return nil, fmt.Errorf("local engine: machine %q: %q is not a state machine ARN", mc.Name, mc.ARN)
	}
	if mc.Name == "" {
		mc.Name = parts[6]
	}
	sm, err := asl.Parse(mc.Definition)
	if err != nil {
		return nil, fmt.Errorf("local engine: machine %s: %w", mc.Name, err)
	}
	m := &machine{
		name: mc.Name, arn: mc.ARN, region: parts[3], account: parts[4], sm: sm,
		tasks: map[string]*taskTarget{}, rules: map[longrun.Status][]string{},
	}
	// asl validated the language; what is left is whether this engine has
	// each Task's integration and target. The raw definition says which.
	var def rawMachine
	if err := json.Unmarshal(mc.Definition, &def); err != nil {
		return nil, fmt.Errorf("local engine: machine %s: %w", mc.Name, err)
	}
	var problems []string
	m.loadTasks(def, "", cfg, &problems)
	if len(problems) > 0 {
		return nil, fmt.Errorf("local engine: machine %s cannot run here: %s", mc.Name, strings.Join(problems, "; "))
	}
	return m, nil
}

// rawMachine is what loadTasks reads of a definition: its Task states,
// and the machines nested in Parallel and Map states.
type rawMachine struct {
	States map[string]struct {
		Type          string
		Resource      string
		Parameters    map[string]json.RawMessage
		Arguments     map[string]json.RawMessage // a JSONata Task's
		Branches      []rawMachine
		ItemProcessor *rawMachine
		Iterator      *rawMachine
	}
}

// loadTasks resolves the Task states of def, the machine at path (asl's
// StateMachine.Path), and of the machines nested in it.
func (m *machine) loadTasks(def rawMachine, path string, cfg Config, problems *[]string) {
	child := func(rel string) string {
		if path == "" {
			return rel
		}
		return path + "/" + rel
	}
	names := make([]string, 0, len(def.States))
	for name := range def.States {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := def.States[name]
		switch s.Type {
		case "Task":
			params := s.Parameters
			if params == nil {
				params = s.Arguments
			}
			t, err := loadTask(s.Resource, params, cfg)
			if err != nil {
				*problems = append(*problems, fmt.Sprintf("state %q: %v", name, err))
				continue
			}
			m.tasks[taskKey(path, name)] = t
		case "Parallel":
			for i, b := range s.Branches {
				m.loadTasks(b, child(fmt.Sprintf("%s/%d", name, i)), cfg, problems)
			}
		case "Map":
			if p := s.ItemProcessor; p != nil {
				m.loadTasks(*p, child(name), cfg, problems)
			} else if p := s.Iterator; p != nil {
				m.loadTasks(*p, child(name), cfg, problems)
			}
		}
	}
}

func loadTask(resource string, params map[string]json.RawMessage, cfg Config) (*taskTarget, error) {
	t := &taskTarget{pattern: asl.RequestResponse}
	switch resource {
	case resourceSendMessage:
		t.kind = sqsSend
	case resourceSendMessage + ".waitForTaskToken":
		t.kind, t.pattern = sqsSend, asl.WaitForTaskToken
	case resourceInvoke:
		t.kind = lambdaInvoke
	default:
		return nil, fmt.Errorf("resource %q is not supported by the local engine (it runs %s, %s.waitForTaskToken and %s)",
			resource, resourceSendMessage, resourceSendMessage, resourceInvoke)
	}
	allowed := map[integration][]string{
		sqsSend:      {"QueueUrl", "QueueUrl.$", "MessageBody", "MessageBody.$"},
		lambdaInvoke: {"FunctionName", "Payload", "Payload.$"},
	}[t.kind]
	for k := range params {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("field Parameters.%s is not supported by the local engine for %s", k, resource)
		}
	}
	static := func(field string) (string, error) {
		raw, ok := params[field]
		if !ok {
			return "", fmt.Errorf("field Parameters.%s is required (a fixed value)", field)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s == "" {
			return "", fmt.Errorf("field Parameters.%s must be a non-empty string", field)
		}
		return s, nil
	}
	switch t.kind {
	case sqsSend:
		if _, dynamic := params["QueueUrl.$"]; dynamic {
			if _, both := params["QueueUrl"]; both {
				return nil, errors.New("fields Parameters.QueueUrl and Parameters.QueueUrl.$ exclude each other")
			}
			// Read from the state when the task starts; a URL that names no
			// queue fails the task then, as SQS would.
			t.queues = cfg.Queues
			if t.queues == nil {
				t.queues = map[string]longrun.Queue{}
			}
			break
		}
		url, err := static("QueueUrl")
		if err != nil {
			return nil, err
		}
		q, ok := cfg.Queues[url]
		if !ok {
			return nil, fmt.Errorf("field Parameters.QueueUrl %q is not a queue of the local engine", url)
		}
		t.queue = q
		t.txq, _ = q.(TxQueue)
		if _, ok := params["MessageBody"]; !ok {
			if _, ok := params["MessageBody.$"]; !ok {
				return nil, errors.New("field Parameters.MessageBody is required")
			}
		}
	case lambdaInvoke:
		name, err := static("FunctionName")
		if err != nil {
			return nil, err
		}
		f := findFunction(cfg.Functions, name)
		if f == nil {
			return nil, fmt.Errorf("field Parameters.FunctionName %q is not a function of the local engine", name)
		}
		t.function = f
	}
	return t, nil
}

// findFunction finds a function by the key it was configured with, or a
// FunctionName ARN (…:function:name[:qualifier]) by its name.
func findFunction(fns map[string]Function, name string) Function {
	if f, ok := fns[name]; ok {
		return f
	}
	if _, rest, ok := strings.Cut(name, ":function:"); ok {
		fn, _, _ := strings.Cut(rest, ":")
		return fns[fn]
	}
	return nil
}
