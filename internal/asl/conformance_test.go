package asl

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// conformanceCase is one case of testdata/conformance/*.json: a definition
// run on an input with mocked task answers, and what must come out.
type conformanceCase struct {
	Name string `json:"name"`
	// Source cites where the expected behaviour comes from: an AWS
	// developer guide page or a states-language.net section. Every case of
	// the feature tables (citedFiles) has one.
	Source     string          `json:"source"`
	Definition json.RawMessage `json:"definition"`
	// File, instead of Definition, names one of the repository's
	// statemachine/*.asl.json, used after Substitute with dummy values.
	File  string          `json:"file"`
	Input json.RawMessage `json:"input"`
	Mock  json.RawMessage `json:"mock"`
	// Start is the execution's start time on the injected clock.
	Start string `json:"start"`
	// Status defaults to SUCCEEDED.
	Status        string          `json:"status"`
	Output        json.RawMessage `json:"output"`
	Error         string          `json:"error"`
	Cause         string          `json:"cause"`
	CauseContains string          `json:"causeContains"`
	// History lists the expected event types in order, when given.
	History []string `json:"history"`
	// Sleeps lists the times Run asked to sleep until, when given.
	Sleeps []string `json:"sleeps"`
	// Tasks lists the Parameters of every task attempt, when given.
	Tasks []json.RawMessage `json:"tasks"`
	// Tokens lists the task token of every attempt, when given.
	Tokens []string `json:"tokens"`
}

const defaultStart = "2024-01-01T00:00:00Z"

// harness is an injected clock that records each wait, a seeded rand and a
// mock Invoke that records what it was asked.
type harness struct {
	now    time.Time
	sleeps []string
	tasks  []json.RawMessage
	tokens []string
	n      int
}

// Now is the harness's time: it moves only when a wait moves it.
func (h *harness) Now() time.Time { return h.now }

// Until records the wait and ends it at once, the clock jumping to t: Run
// is synchronous, so nothing else could move the clock while it waits.
func (h *harness) Until(t time.Time) (<-chan struct{}, func()) {
	h.sleeps = append(h.sleeps, t.UTC().Format(time.RFC3339Nano))
	if t.After(h.now) {
		h.now = t
	}
	done := make(chan struct{})
	close(done)
	return done, func() {}
}

func setup(t *testing.T, c conformanceCase) (*StateMachine, *harness, RunOptions) {
	t.Helper()
	def := c.Definition
	if c.File != "" {
		def = repoDefinition(t, c.File)
	}
	m, err := Parse(def)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	start := c.Start
	if start == "" {
		start = defaultStart
	}
	now, err := time.Parse(time.RFC3339, start)
	if err != nil {
		t.Fatalf("start %q: %v", start, err)
	}
	h := &harness{now: now}
	mock := c.Mock
	if len(mock) == 0 {
		mock = json.RawMessage("{}")
	}
	invoke, err := LoadMock(mock)
	if err != nil {
		t.Fatalf("LoadMock: %v", err)
	}
	o := RunOptions{
		Invoke: func(ctx context.Context, task *Task, token string) (json.RawMessage, error) {
			h.tasks = append(h.tasks, task.Parameters)
			h.tokens = append(h.tokens, token)
			return invoke(ctx, task, token)
		},
		Clock: h,
		Rand:  rand.New(rand.NewPCG(1, 2)),
		NewToken: func() string {
			h.n++
			return "token-" + string(rune('0'+h.n))
		},
		Context: Context{
			Execution:    ExecutionContext{ID: "arn:aws:states:us-east-1:123456789012:execution:sm:exec-1", Name: "exec-1", RoleArn: "arn:aws:iam::123456789012:role/sfn"},
			StateMachine: StateMachineContext{ID: "arn:aws:states:us-east-1:123456789012:stateMachine:sm", Name: "sm"},
		},
	}
	return m, h, o
}

// dummySubstitutions stand for the SAM template's DefinitionSubstitutions.
var dummySubstitutions = map[string]string{
	"JobsQueueUrl":      "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
	"NotifyFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:notify",
}

func repoDefinition(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "statemachine", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err = Substitute(b, dummySubstitutions)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/conformance/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance fixtures: %v", err)
	}
	for _, file := range files {
		runCases(t, file)
	}
}

// TestStateMachines runs the repository's own state machines through their
// paths: testdata/statemachines.json.
func TestStateMachines(t *testing.T) {
	t.Parallel()
	runCases(t, "testdata/statemachines.json")
}

// citedFiles are the per-feature conformance tables whose every case
// cites its own source.
var citedFiles = map[string]bool{
	"fixes.json": true, "variables.json": true, "map.json": true, "parallel.json": true, "jsonata.json": true,
}

// fileSources cite the source of the tables written before cases carried
// their own (a case's "source" is more precise where it has one). Cases
// named "spec: ..." are the specification's own examples.
var fileSources = map[string]string{
	"choice.json":      "https://states-language.net/spec.html#choice-state",
	"intrinsics.json":  "https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html",
	"paths.json":       "https://states-language.net/spec.html#filters",
	"retry_catch.json": "https://states-language.net/spec.html#errors",
	"states.json":      "https://states-language.net/spec.html#state-types",
}

func runCases(t *testing.T, file string) {
	var cases []conformanceCase
	readJSON(t, file, &cases)
	for _, c := range cases {
		if citedFiles[filepath.Base(file)] && !strings.HasPrefix(c.Source, "https://") {
			t.Errorf("%s: case %q cites no source (an AWS developer guide or states-language.net URL)", file, c.Name)
		}
		if c.Source == "" && strings.Contains(file, "conformance") && fileSources[filepath.Base(file)] == "" && !citedFiles[filepath.Base(file)] {
			t.Errorf("%s: a conformance table needs a source per case or in fileSources", file)
		}
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json")+"/"+c.Name, func(t *testing.T) {
			t.Parallel()
			{
				m, h, o := setup(t, c)
				input := c.Input
				if len(input) == 0 {
					input = json.RawMessage("{}")
				}
				res, err := Run(context.Background(), m, input, o)
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				want := c.Status
				if want == "" {
					want = StatusSucceeded
				}
				if res.Status != want {
					t.Fatalf("status %s (%s: %s), want %s", res.Status, res.Error, res.Cause, want)
				}
				if c.Output != nil {
					assertJSON(t, "output", res.Output, c.Output)
				}
				if res.Error != c.Error {
					t.Errorf("error %q, want %q", res.Error, c.Error)
				}
				if c.Cause != "" && res.Cause != c.Cause {
					t.Errorf("cause %q, want %q", res.Cause, c.Cause)
				}
				if c.CauseContains != "" && !strings.Contains(res.Cause, c.CauseContains) {
					t.Errorf("cause %q does not contain %q", res.Cause, c.CauseContains)
				}
				if c.History != nil {
					var got []string
					for _, e := range res.History {
						got = append(got, e.Type)
					}
					if !slices.Equal(got, c.History) {
						t.Errorf("history\n got %q\nwant %q", got, c.History)
					}
				}
				if c.Sleeps != nil && !slices.Equal(h.sleeps, c.Sleeps) {
					t.Errorf("sleeps\n got %q\nwant %q", h.sleeps, c.Sleeps)
				}
				if c.Tokens != nil && !slices.Equal(h.tokens, c.Tokens) {
					t.Errorf("tokens %q, want %q", h.tokens, c.Tokens)
				}
				if c.Tasks != nil {
					if len(h.tasks) != len(c.Tasks) {
						t.Fatalf("%d task attempts, want %d: %s", len(h.tasks), len(c.Tasks), h.tasks)
					}
					for i := range c.Tasks {
						assertJSON(t, "task parameters", h.tasks[i], c.Tasks[i])
					}
				}
			}
		})
	}
}

func readJSON(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// assertJSON compares JSON by value: key order and number spelling
// (1 and 1.0) do not matter.
func assertJSON(t *testing.T, what string, got, want json.RawMessage) {
	t.Helper()
	g, err := decodeJSON(got)
	if err != nil {
		t.Fatalf("%s: %s is not JSON: %v", what, got, err)
	}
	w, err := decodeJSON(want)
	if err != nil {
		t.Fatalf("%s: expected %s is not JSON: %v", what, want, err)
	}
	if !jsonEqual(g, w) {
		t.Errorf("%s\n got %s\nwant %s", what, got, want)
	}
}
