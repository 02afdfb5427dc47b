package longrun

import (
	"errors"
	"fmt"
)

// Error codes. They are translated to HTTP statuses, SQS batch failures or ASL
// error names only at the edges.
const (
	EINVALID      = "invalid"        // 400: the request is malformed; Message says what to fix
	EUNAUTHORIZED = "unauthorized"   // 401: missing or unknown API key
	ENOTFOUND     = "not_found"      // 404: unknown, or owned by another tenant
	ECONFLICT     = "conflict"       // 409: e.g. an Idempotency-Key reused with another body
	ETOOLARGE     = "too_large"      // 413: over MaxInputBytes
	ETHROTTLED    = "throttled"      // 429
	EUNAVAILABLE  = "unavailable"    // 503: a dependency failed; safe to retry
	EINTERNAL     = "internal"       // 500: a bug; the message never leaks internals
	ENOTRUNNING   = "not_running"    // 409: the execution already ended
	ETASKGONE     = "task_gone"      // the task token is no longer valid (timed out, stopped, done)
	EDUPLICATE    = "already_exists" // a record with that id exists
)

// Error is a domain error: a code and a message a person can act on.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("longrun: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, and a
// generic message for any other error so internals never leak.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err carries code.
func IsCode(err error, code string) bool { return err != nil && ErrorCode(err) == code }

// Step Functions' limits on an error name and its cause (SendTaskFailure,
// StopExecution), in characters.
const (
	MaxErrorNameLength = 256
	MaxCauseLength     = 32768
)

// Truncate cuts s to at most n characters (runes), as Step Functions counts
// them, never in the middle of one.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
