package asl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// mockAnswer is one answer of a mock file: a result or an error.
type mockAnswer struct {
	Return json.RawMessage `json:"Return,omitempty"`
	Throw  *TaskError      `json:"Throw,omitempty"`
}

func loadMock(data []byte) (func(context.Context, *Task, string) (json.RawMessage, error), error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var answers map[string][]mockAnswer
	if err := d.Decode(&answers); err != nil {
		return nil, fmt.Errorf("read mock file: %w", err)
	}
	for state, list := range answers {
		for i, a := range list {
			if (a.Return == nil) == (a.Throw == nil) {
				return nil, fmt.Errorf("mock file: %s[%d] needs exactly one of Return and Throw", state, i)
			}
			if a.Throw != nil && a.Throw.Name == "" {
				return nil, fmt.Errorf("mock file: %s[%d].Throw needs an Error", state, i)
			}
		}
	}
	var mu sync.Mutex
	used := map[string]int{}
	return func(_ context.Context, t *Task, _ string) (json.RawMessage, error) {
		list := answers[t.State]
		if len(list) == 0 {
			return nil, &TaskError{Name: ErrTaskFailed, Cause: fmt.Sprintf("the mock file has no answer for state %q", t.State)}
		}
		mu.Lock()
		i := min(used[t.State], len(list)-1)
		used[t.State]++
		mu.Unlock()
		if a := list[i]; a.Throw != nil {
			return nil, &TaskError{Name: a.Throw.Name, Cause: a.Throw.Cause}
		}
		return list[i].Return, nil
	}, nil
}
