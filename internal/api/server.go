// Package api owns longrun's HTTP API (DESIGN.md § HTTP API): the handlers
// behind every route, request validation, idempotency, tenant isolation,
// per-tenant rate limiting and the translation of domain errors into
// application/problem+json. The same http.Handler serves `longrun dev`
// (net/http on 127.0.0.1) and API Gateway (through LambdaHandler).
package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	longrun "github.com/longrun/longrun"
)

// Config holds what the API needs. Executions, Orchestrator, Limits and either
// Tenants or Authenticate are required; the rest have defaults.
type Config struct {
	Executions   longrun.ExecutionStore
	Tenants      longrun.TenantStore // used by the default Authenticate (BearerAuth)
	Orchestrator longrun.Orchestrator
	// Starter, if set, writes a new execution's record and starts its state
	// machine in one commit (the local engine: record and engine share one
	// SQLite file), so no crash can leave a RUNNING record with nothing
	// behind it. Nil: the record is written, then the state machine started
	// (AWS: DynamoDB, then Step Functions).
	Starter RecordStarter
	// Stopper, if set, stops an execution and records ABORTED in one commit,
	// or refuses (ENOTRUNNING) when the record has ended meanwhile, so a stop
	// racing a completion never answers 200 for an execution that describe
	// shows SUCCEEDED. Nil: stop the state machine, then record.
	Stopper RecordStopper

	// Authenticate resolves a request to its tenant. Nil means
	// BearerAuth(Tenants): check the API key, as `longrun dev` does. Behind
	// API Gateway the Lambda authorizer has already done that: use GatewayAuth.
	Authenticate func(*http.Request) (tenant string, err error)

	// CheckCallbackURL vets a client's callbackUrl (scheme, host, SSRF rules);
	// its error message is shown to the client. Nil accepts any absolute
	// http(s) URL, which is only right in tests.
	CheckCallbackURL func(string) error

	// Limits bound every execution's job (StateInput.Limits); a kind with
	// its own JobOptions.Timeout replaces TimeoutSeconds.
	Limits longrun.Limits
	// QueueWait is how long a task may wait in its queue before the Work
	// state gives up: the Work state's TimeoutSeconds is the job's limit
	// plus this (longrun.Backstop). 0 means longrun.DefaultQueueWait.
	QueueWait time.Duration

	// Queues says which queue each execution's task is sent to
	// (StateInput.QueueURL).
	Queues Routing

	// Jobs are the kinds of job a start may name ("job"); the first is the
	// default. Start checks the kind and its InputSchema before anything
	// runs. Nil accepts only starts that name no kind, with any input, for
	// the routes that never start anything.
	Jobs *longrun.Registry

	Clock  longrun.Clock // nil means longrun.SystemClock
	Logger *slog.Logger  // nil discards

	// RatePerTenant and BurstPerTenant configure each tenant's token bucket
	// (requests per second, bucket size). RatePerTenant 0 turns throttling off.
	// The bucket is per process: on AWS each Lambda instance has its own, and
	// API Gateway's stage throttling is the global bound.
	RatePerTenant  float64
	BurstPerTenant int

	// RetryAfter is what Retry-After tells clients polling a RUNNING
	// execution; 0 means DefaultRetryAfter.
	RetryAfter time.Duration
	// CurrentState names the state a running execution's state machine is
	// in, for describe; nil leaves it out. longrun dev asks its engine; on
	// AWS it stays nil: Step Functions' DescribeExecution is throttled at
	// about 15 requests per second, far below describe's polling.
	CurrentState func(ctx context.Context, e *longrun.Execution) string
}

// RecordStarter creates an execution record (as ExecutionStore.CreateExecution,
// replays and conflicts included) and starts its state machine with in, in
// one commit: both happen or neither does. A replay starts nothing.
type RecordStarter interface {
	CreateAndStart(ctx context.Context, e *longrun.Execution, in longrun.StateInput) (stored *longrun.Execution, replayed bool, err error)
}

// RecordStopper stops e's state machine and records outcome (ABORTED) on
// its record in one commit; ENOTRUNNING, with nothing changed, when either
// has already ended.
type RecordStopper interface {
	StopAndRecord(ctx context.Context, e *longrun.Execution, outcome longrun.Outcome) (*longrun.Execution, error)
}

// Routing sends each execution's task to a queue by its job's limit (the
// kind's Timeout, or the deployment's JobTimeoutSeconds): a job that may run
// longer than the Lambda worker goes to Long, which only `longrun worker`
// reads, so it never lands where it cannot finish.
type Routing struct {
	Jobs string // the Lambda worker's queue URL
	// Long is the long-jobs queue URL; "" sends every job to Jobs.
	Long string
	// LongerThan: a job whose limit is over it goes to Long.
	LongerThan time.Duration
}

// QueueFor is the queue URL of the tasks of a job limited to limit.
func (r Routing) QueueFor(limit time.Duration) string {
	if r.Long != "" && limit > r.LongerThan {
		return r.Long
	}
	return r.Jobs
}

// DefaultRetryAfter is the poll interval suggested to clients by default.
const DefaultRetryAfter = 5 * time.Second

// server carries the configuration into the handlers.
type server struct {
	cfg   Config
	log   *slog.Logger
	clock longrun.Clock

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // per tenant
}

// NewServer returns the HTTP API as one handler: every route of routes.go
// behind request logging, panic recovery, authentication and throttling.
func NewServer(cfg Config) http.Handler {
	s := &server{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, limiters: map[string]*rate.Limiter{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = longrun.SystemClock{}
	}
	if s.cfg.Authenticate == nil {
		s.cfg.Authenticate = BearerAuth(cfg.Tenants)
	}
	if s.cfg.CheckCallbackURL == nil {
		s.cfg.CheckCallbackURL = checkHTTPURL
	}
	if s.cfg.RetryAfter <= 0 {
		s.cfg.RetryAfter = DefaultRetryAfter
	}
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.Method+" "+rt.Path, s.handle(rt.handler))
	}
	return s.observe(s.authenticate(s.throttle(noRoute(mux))))
}

// detached returns a context for writes that must finish even when the client
// goes away mid-request (the cleanup after a failed start, for one).
func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
