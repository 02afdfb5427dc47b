package asl

// stateError is an error the language names: it ends up as a Step (through
// Retry/Catch or as the execution's failure), never as a Go error returned
// to the engine.
type stateError struct {
	name  string
	cause string
}

func (e *stateError) Error() string { return e.name + ": " + e.cause }

// asStateError turns any error of the evaluation into a stateError; an
// unnamed one is a bug in the definition's data, hence States.Runtime.
func asStateError(err error) *stateError {
	if se, ok := err.(*stateError); ok {
		return se
	}
	return &stateError{ErrRuntime, err.Error()}
}

// terminal reports errors no Retry or Catch can handle: Step Functions
// fails the execution on States.Runtime whatever the state says.
func terminal(name string) bool { return name == ErrRuntime }

// errorMatches reports whether an ErrorEquals entry matches an error name:
//   - a name matches itself;
//   - States.ALL matches every error except States.Runtime and
//     States.DataLimitExceeded (those two only by their own name, and
//     States.Runtime not even then; see terminal);
//   - States.Timeout also matches States.HeartbeatTimeout, the heartbeat
//     being a kind of task timeout;
//   - States.TaskFailed matches every error except the timeouts (and the
//     two States.ALL leaves out).
func errorMatches(pattern, name string) bool {
	if pattern == name {
		return true
	}
	switch pattern {
	case ErrAll:
		return name != ErrRuntime && name != ErrDataLimitExceeded
	case ErrTimeout:
		return name == ErrHeartbeatTimeout
	case ErrTaskFailed:
		return name != ErrRuntime && name != ErrDataLimitExceeded && name != ErrTimeout && name != ErrHeartbeatTimeout
	}
	return false
}

func anyMatches(patterns []string, name string) bool {
	for _, p := range patterns {
		if errorMatches(p, name) {
			return true
		}
	}
	return false
}
