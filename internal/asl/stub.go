package asl

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"
)

// Placeholders until the interpreter lands; the API above is the contract.

var errNotYet = errors.New("asl: not implemented yet")

type base struct{ typ string }

type state interface{ common() *base }

func parse([]byte) (*StateMachine, error)                  { return nil, errNotYet }
func substitute([]byte, map[string]string) ([]byte, error) { return nil, errNotYet }
func run(context.Context, *StateMachine, json.RawMessage, RunOptions) (*Result, error) {
	return nil, errNotYet
}
func loadMock([]byte) (func(context.Context, *Task, string) (json.RawMessage, error), error) {
	return nil, errNotYet
}
func (m *StateMachine) enter(string, json.RawMessage, *Context, time.Time) (Step, error) {
	return Step{}, errNotYet
}
func (m *StateMachine) taskSucceeded(string, json.RawMessage, json.RawMessage, *Context) Step {
	return Step{}
}
func (m *StateMachine) taskFailed(string, json.RawMessage, string, string, []int, *Context, time.Time, *rand.Rand) Step {
	return Step{}
}
