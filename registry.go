package longrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
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

	schema *jsonschema.Schema // Options.InputSchema, compiled; nil accepts any input
}

// JobOptions are a kind's settings. The zero value is valid: the deployment's
// limits, any input, no retries.
type JobOptions struct {
	// Timeout is how long a job of this kind may run, its retries and their
	// backoff included, counted by the worker from the moment it takes the
	// task (time waiting in the queue never counts); past it the task fails
	// with Job.Timeout. It travels as the execution's limits.timeoutSeconds
	// (rounded up to whole seconds). 0 means the deployment's
	// (JobTimeoutSeconds in template.yaml). A kind whose Timeout is over
	// what the Lambda worker can run is routed to the long-jobs queue, which
	// only `longrun worker` reads (docs/jobs.md, "Timeouts").
	// It must be within what the queue and the worker allow (12 h on SQS;
	// 15 min on the Lambda worker): Registry.CheckTimeouts says where it is
	// not, and the apps call it at start-up (docs/jobs.md). It may be shorter
	// than the workers' lease (JobHeartbeatSeconds): the two are independent.
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

// RetryPolicy says how often and how soon a failed job is tried again, in
// the worker, while the execution's task stays the same: a job that returned
// an error or panicked runs again after a backoff, up to MaxAttempts runs,
// and the execution fails with the last error only when they are used up. A
// job marks an error not worth retrying with Permanent.
type RetryPolicy struct {
	// MaxAttempts is the most times the job runs, the first included; 0 and
	// 1 mean once.
	MaxAttempts int
	// Backoff is the wait before the second attempt; each later wait doubles,
	// up to MaxBackoff. 0 means one second.
	Backoff time.Duration
	// MaxBackoff caps the wait; 0 means an hour.
	MaxBackoff time.Duration
}

// Attempts is the most times a job under p runs: at least once.
func (p RetryPolicy) Attempts() int { return max(p.MaxAttempts, 1) }

// Delay is the wait after the failed attempt number attempt (from 1) before
// the next: Backoff, doubled for each attempt after the first, capped at
// MaxBackoff.
func (p RetryPolicy) Delay(attempt int) time.Duration {
	d, limit := p.Backoff, p.MaxBackoff
	if d <= 0 {
		d = time.Second
	}
	if limit <= 0 {
		limit = time.Hour
	}
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Permanent marks err as not worth retrying (the input is wrong, the
// resource is gone): the worker fails the execution with it at once,
// whatever the kind's RetryPolicy.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// The longest a job kind's Timeout can be, and why: the bound
// Registry.CheckTimeouts is given where jobs run through SQS (AWS, and
// `longrun dev`, which keeps the same rule). The Lambda worker is bounded
// further, by MaxLambdaJobTimeout.
const (
	MaxJobTimeout       = 12 * time.Hour
	MaxJobTimeoutReason = "SQS keeps a message in flight at most 12 h after it is received; a longer job would be received, and run, twice"

	MaxLambdaJobTimeout       = 15 * time.Minute
	MaxLambdaJobTimeoutReason = "a Lambda function runs at most 15 minutes: run this kind on `longrun worker`"
)

// kindName is what a kind may be called: it appears in URLs, metric names and
// CLI flags, so it stays short and plain.
var kindName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)

// ValidKindName reports whether name may name a kind.
func ValidKindName(name string) bool { return kindName.MatchString(name) }

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
	var schema *jsonschema.Schema
	if opts.InputSchema != nil {
		var err error
		if schema, err = compileSchema(opts.InputSchema); err != nil {
			panic(fmt.Sprintf("longrun: Registry.Handle(%q): %v", kind, err))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byName[kind]; dup {
		panic(fmt.Sprintf("longrun: Registry.Handle(%q): the kind is already registered", kind))
	}
	k := &Kind{Name: kind, Job: job, Options: opts, schema: schema}
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
	case opts.Retry.MaxBackoff > 0 && opts.Retry.Backoff > opts.Retry.MaxBackoff:
		return fmt.Errorf("the Retry policy's Backoff %s is over its MaxBackoff %s", opts.Retry.Backoff, opts.Retry.MaxBackoff)
	}
	return nil
}

// Limits are the bounds of an execution of k: the deployment's, with the
// kind's Timeout as TimeoutSeconds (the job's own limit) when it has one.
// The Work state's backstop is not set here: see Backstop.
func (k *Kind) Limits(deployment Limits) Limits {
	if k.Options.Timeout > 0 {
		deployment.TimeoutSeconds = int(math.Ceil(k.Options.Timeout.Seconds()))
	}
	return deployment
}

// CheckTimeouts reports the kinds whose Timeout a deployment cannot honour:
// over longest, the longest a job can run on the workers that run it (0: no
// bound); why says what sets that bound, for the message. It returns nil
// when every kind fits.
func (r *Registry) CheckTimeouts(longest time.Duration, why string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var errs []error
	for _, k := range r.kinds {
		t := k.Options.Timeout
		switch {
		case t == 0:
		case longest > 0 && t > longest:
			errs = append(errs, fmt.Errorf("job %q: Timeout %s cannot be honoured: it is over %s (%s)", k.Name, t, longest, why))
		}
	}
	return errors.Join(errs...)
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
