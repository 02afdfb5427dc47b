package longrun

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"time"
)

// Registry holds the kinds of job one deployment runs. A user builds one in
// their own main, registers each job by kind, and hands it to cli.Main (the
// command line and `longrun dev`) and to the Lambda functions; the kind a
// client names in a start request travels with the task to the worker, which
// runs the job registered under it.
//
// The first kind registered is the default: a start request without "job"
// runs it. A Registry is safe for concurrent use, but it is meant to be filled
// once at start-up, before anything runs.
type Registry struct {
	mu     sync.RWMutex
	kinds  []*Kind
	byName map[string]*Kind
}

// Kind is one registered kind of job.
type Kind struct {
	Name    string
	Job     Job
	Options JobOptions
}

// JobOptions are a kind's settings. The zero value is valid: the deployment's
// limits, any input, no retries.
type JobOptions struct {
	// Timeout is the job's own limit on one attempt; 0 means the deployment's
	// (JobTimeoutSeconds in template.yaml). It cannot exceed what the queue
	// and the worker allow; where it would, starting the app says so.
	Timeout time.Duration

	// InputSchema is a JSON Schema the start request's input must satisfy;
	// nil accepts any JSON. A start whose input breaks it is refused with a
	// 400 that names the field and the rule, before anything runs.
	InputSchema json.RawMessage

	// Retry re-runs a job that returned an error or panicked. The zero value
	// runs each job once.
	Retry RetryPolicy

	// Description is a sentence for people: shown by the CLI and the console.
	Description string
}

// RetryPolicy says how often and how soon a failed job is tried again.
type RetryPolicy struct {
	// MaxAttempts is the most times the job runs, the first included; 0 and
	// 1 mean once.
	MaxAttempts int
	// Backoff is the wait before the second attempt; each later wait doubles,
	// up to MaxBackoff. 0 means one second.
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// kindName is what a kind may be called: it appears in URLs, metric names and
// CLI flags, so it stays short and plain.
var kindName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{byName: make(map[string]*Kind)}
}

// Handle registers job under kind. Like http.ServeMux.Handle it panics on a
// programming error — an invalid or duplicate kind, a nil job, invalid options
// — so a broken registry stops the program at start-up, never mid-request.
func (r *Registry) Handle(kind string, job Job, opts JobOptions) {
	if err := checkKind(kind, job, opts); err != nil {
		panic(fmt.Sprintf("longrun: Registry.Handle(%q): %v", kind, err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byName[kind]; dup {
		panic(fmt.Sprintf("longrun: Registry.Handle(%q): the kind is already registered", kind))
	}
	k := &Kind{Name: kind, Job: job, Options: opts}
	r.kinds = append(r.kinds, k)
	r.byName[kind] = k
}

func checkKind(kind string, job Job, opts JobOptions) error {
	switch {
	case !kindName.MatchString(kind):
		return fmt.Errorf("a kind is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter")
	case job == nil:
		return fmt.Errorf("the job is nil")
	case opts.Timeout < 0:
		return fmt.Errorf("the Timeout %s is negative", opts.Timeout)
	case opts.Retry.MaxAttempts < 0 || opts.Retry.Backoff < 0 || opts.Retry.MaxBackoff < 0:
		return fmt.Errorf("the Retry policy %+v has a negative field", opts.Retry)
	case opts.InputSchema != nil && !json.Valid(opts.InputSchema):
		return fmt.Errorf("the InputSchema is not valid JSON")
	}
	return nil
}

// Lookup returns the kind registered as name; "" is the default kind.
func (r *Registry) Lookup(name string) (*Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if name == "" {
		if len(r.kinds) == 0 {
			return nil, false
		}
		return r.kinds[0], true
	}
	k, ok := r.byName[name]
	return k, ok
}

// Kinds returns the registered kinds' names in registration order; the first
// is the default.
func (r *Registry) Kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, len(r.kinds))
	for i, k := range r.kinds {
		names[i] = k.Name
	}
	return names
}

// Has reports whether name is registered.
func (r *Registry) Has(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.byName[name]
	return ok
}

// JobInfo tells a running job which execution and which attempt it is. Jobs
// run at least once: a crash or a lost worker runs the job again, so a job
// with side effects uses ExecutionID (stable across attempts) as its
// idempotency key.
type JobInfo struct {
	ExecutionID  string
	ExecutionARN string
	Kind         string
	// Attempt counts from 1: how many times this execution's job has been
	// handed to a worker, this time included.
	Attempt int
}

type jobInfoKey struct{}

// WithJobInfo returns ctx carrying info; the worker calls it before it runs a
// job, and tests of a job call it to run the job as the worker would.
func WithJobInfo(ctx context.Context, info JobInfo) context.Context {
	return context.WithValue(ctx, jobInfoKey{}, info)
}

// JobInfoFromContext returns the JobInfo of the job running under ctx.
func JobInfoFromContext(ctx context.Context) (JobInfo, bool) {
	info, ok := ctx.Value(jobInfoKey{}).(JobInfo)
	return info, ok
}
