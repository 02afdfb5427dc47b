// Package devapp assembles `longrun dev`: the whole app on one machine. It
// reads template.yaml as `sam deploy` would — the state machines with their
// DefinitionSubstitutions, the jobs queue's redrive settings, the EventBridge
// rule that brings status changes to notify, the Parameters' defaults — and
// wires the very handler code of the Lambdas (internal/api, internal/worker,
// internal/notify) to the local adapters: SQLite for the store and the queue,
// internal/local for Step Functions. One SQLite file holds everything.
package devapp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/api"
	"github.com/longrun/longrun/internal/asl"
	"github.com/longrun/longrun/internal/console"
	"github.com/longrun/longrun/internal/delivery"
	"github.com/longrun/longrun/internal/local"
	"github.com/longrun/longrun/internal/notify"
	"github.com/longrun/longrun/internal/sqlite"
	"github.com/longrun/longrun/internal/template"
	"github.com/longrun/longrun/internal/worker"
	"github.com/longrun/longrun/jobs/ramen"
)

// Logical ids in template.yaml that the local app plays the part of.
const (
	MainStateMachine    = "LongrunStateMachine"
	DeliverStateMachine = "DeliverStateMachine"
	JobsQueue           = "JobsQueue"
	LongJobsQueue       = "LongJobsQueue"
	NotifyFunction      = "NotifyFunction"
)

// Local stand-ins for what CloudFormation would resolve.
const (
	region    = "local"
	accountID = "000000000000"
	stackName = "longrun"
)

// Config configures the local app. DataDir is required.
type Config struct {
	DataDir      string // holds longrun.db
	TemplatePath string // default template.yaml
	// TemplateFS, when set, holds the template (at TemplatePath) and its
	// state machines: the files a binary carries with go:embed, so that
	// `longrun dev` runs from any directory.
	TemplateFS fs.FS

	// AllowLoopbackWebhooks lets callback URLs point at 127.0.0.1/::1 (for
	// `longrun webhook listen`); nothing else private is ever allowed.
	AllowLoopbackWebhooks bool
	// WebhookSchedule overrides the template's WebhookSchedule, e.g. "1s,5s,30s".
	WebhookSchedule string
	// Workers is how many jobs run at once; default 8.
	Workers int
	// TenantWorkers is how many of the workers one tenant's jobs may hold at
	// once, so one tenant's long jobs cannot stall the others; default
	// all but an eighth of Workers, keeping at least one for the others.
	TenantWorkers int
	// MaxRunning bounds the executions running at once (the backlog): past
	// it, start answers 429 with Retry-After instead of taking more work
	// than the workers can finish. Default DefaultMaxRunning; negative for
	// no bound.
	MaxRunning int
	// RatePerTenant is each tenant's request rate (per second, burst twice
	// that) before the API answers 429; 0 turns throttling off.
	RatePerTenant float64
	// Jobs are the kinds of job the worker runs; default the ramen timer
	// with the template's RamenTimerSeconds.
	// A kind whose Timeout the deployment cannot honour (Registry.
	// CheckTimeouts) makes Open fail, naming it.
	Jobs *longrun.Registry
	// BaseURL is where clients reach the API (for thin webhooks' describeUrl);
	// Serve sets it from its listener when empty.
	BaseURL string
	// Owner, when set, is the URL this process serves DataDir on, and makes
	// Open take the directory's owner lock (LockFile): one longrun dev per
	// data directory. Another live owner makes Open fail at once with
	// ErrDataDirInUse, naming its pid and URL. Holding the lock, Open hands
	// back at once the jobs a dead predecessor (kill -9) was running, so
	// they run again within seconds instead of after their lease. Read-only
	// users (longrun history) leave it empty.
	Owner string

	// MaxConnections bounds the HTTP connections kept open; default
	// DefaultMaxConnections. At the bound the oldest idle one makes room.
	MaxConnections int

	// Retention is how long ended executions, their history and webhook
	// deliveries are kept; default DefaultRetention (90 days, as Step
	// Functions).
	Retention time.Duration

	// Clock replaces real time for every record, timer and sweep (tests:
	// internal/fakeclock). Default real time.
	Clock longrun.Clock

	// DBOptions are passed to sqlite.Open (tests: sqlite.WithWriteFault).
	DBOptions []sqlite.Option

	Logger *slog.Logger // default: discard
}

// App is the assembled local app.
type App struct {
	DB         *sqlite.DB
	Executions *sqlite.ExecutionStore
	Tenants    *sqlite.TenantStore
	Engine     *local.Engine
	Handler    http.Handler // the HTTP API, and the web console under /ui/
	Limits     longrun.Limits
	Schedule   []time.Duration

	poller    *worker.Poller
	jobs      *sqlite.Queue
	owner     *owner
	notifier  *notify.Notifier
	log       *slog.Logger
	retention time.Duration
	maxConns  int
	dataDir   string
	onSweep   func() // tests: after each sweep
	baseURL   string
	mu        sync.Mutex
}

// Open opens (or creates) the data directory and assembles the app. Close it
// when done; Serve runs it.
func Open(ctx context.Context, cfg Config) (*App, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("devapp: DataDir is required")
	}
	if cfg.TemplatePath == "" {
		cfg.TemplatePath = "template.yaml"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var tpl *template.Template
	var err error
	if cfg.TemplateFS != nil {
		tpl, err = template.LoadFS(cfg.TemplateFS, cfg.TemplatePath)
	} else {
		tpl, err = template.Load(cfg.TemplatePath)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s (pass --template with the path of a SAM template): %w", cfg.TemplatePath, err)
	}
	settings, err := readSettings(tpl, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.TemplatePath, err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	var owned *owner
	if cfg.Owner != "" {
		if owned, err = own(cfg.DataDir, cfg.Owner, time.Now()); err != nil {
			return nil, err
		}
	}
	// Webhook secrets and API key hashes live here: owner only, also for a
	// directory made by an older version or by hand.
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict data dir %s to its owner: %w", cfg.DataDir, err)
	}
	db, err := OpenDB(ctx, cfg.DataDir, cfg.DBOptions...)
	if err != nil {
		_ = owned.release()
		return nil, err
	}
	if cfg.Clock != nil {
		db.Clock = cfg.Clock
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	a := &App{
		retention:  cfg.Retention,
		dataDir:    cfg.DataDir,
		maxConns:   cmp.Or(max(cfg.MaxConnections, 0), DefaultMaxConnections),
		DB:         db,
		Executions: sqlite.NewExecutionStore(db),
		Tenants:    sqlite.NewTenantStore(db),
		Limits:     settings.limits,
		Schedule:   settings.schedule,
		log:        log,
		baseURL:    cfg.BaseURL,
		owner:      owned,
	}
	if err := a.assemble(ctx, tpl, settings, cfg); err != nil {
		a.Close()
		return nil, err
	}
	if owned != nil {
		// Every message in flight was received by a process that is gone:
		// the lock proves no other one runs. Its jobs run again now.
		n, err := a.jobs.ReleaseInFlight(ctx)
		if err != nil {
			a.Close()
			return nil, err
		}
		if n > 0 {
			log.InfoContext(ctx, "jobs of a stopped longrun dev handed back to the worker", "jobs", n)
		}
	}
	return a, nil
}

// OpenDB opens the SQLite file of a data directory, as `longrun dev` and
// `longrun keys` share it.
func OpenDB(ctx context.Context, dataDir string, opts ...sqlite.Option) (*sqlite.DB, error) {
	path := filepath.Join(dataDir, "longrun.db")
	db, err := sqlite.Open(ctx, path, opts...)
	if err != nil {
		return nil, fmt.Errorf("open data dir %s: %w", dataDir, err)
	}
	// SQLite creates its files with the umask's mode (often 0644); the
	// database holds webhook secrets, so owner only. The -wal and -shm files
	// take the database's mode when SQLite creates them.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("restrict %s to its owner: %w", f, err)
		}
	}
	return db, nil
}

// settings are what the template's Parameters and resources say.
type settings struct {
	limits    longrun.Limits
	queueWait time.Duration // MaxQueueWaitSeconds; 0 when the template has none
	// routing is the start function's, as on AWS: kinds over the Lambda
	// worker's time go to the long-jobs queue's URL. Here one queue stands
	// for both (no Lambda limits it), read by the in-process worker.
	routing     api.Routing
	schedule    []time.Duration
	ramenTimer  int
	queue       template.Queue
	statusRules []local.StatusRule
}

func readSettings(tpl *template.Template, cfg Config) (*settings, error) {
	var s settings
	var err error
	param := func(name string) (int, error) {
		p, ok := tpl.Parameters[name]
		if !ok {
			return 0, fmt.Errorf("parameter %s is missing", name)
		}
		return tpl.Int(p.Default, nil)
	}
	if s.limits.TimeoutSeconds, err = param("JobTimeoutSeconds"); err != nil {
		return nil, err
	}
	if s.limits.HeartbeatSeconds, err = param("JobHeartbeatSeconds"); err != nil {
		return nil, err
	}
	// Optional, so a template from before long-jobs routing still runs.
	if _, ok := tpl.Parameters["MaxQueueWaitSeconds"]; ok {
		wait, err := param("MaxQueueWaitSeconds")
		if err != nil {
			return nil, err
		}
		s.queueWait = time.Duration(wait) * time.Second
	}
	s.routing = api.Routing{Jobs: queueURL(JobsQueue), LongerThan: longrun.MaxLambdaJobTimeout - worker.LambdaMargin}
	if _, ok := tpl.Parameters["WorkerTimeoutSeconds"]; ok {
		secs, err := param("WorkerTimeoutSeconds")
		if err != nil {
			return nil, err
		}
		s.routing.LongerThan = time.Duration(secs)*time.Second - worker.LambdaMargin
	}
	if _, ok := tpl.Resources[LongJobsQueue]; ok {
		s.routing.Long = queueURL(LongJobsQueue)
	}
	// Only the default registry (the ramen example) reads RamenTimerSeconds:
	// a project of its own jobs has no such parameter.
	if cfg.Jobs == nil {
		if s.ramenTimer, err = param("RamenTimerSeconds"); err != nil {
			return nil, err
		}
	}
	text := cfg.WebhookSchedule
	if text == "" {
		p, ok := tpl.Parameters["WebhookSchedule"]
		if !ok {
			return nil, errors.New("parameter WebhookSchedule is missing")
		}
		if text, err = tpl.String(p.Default, nil); err != nil {
			return nil, fmt.Errorf("parameter WebhookSchedule: %w", err)
		}
	}
	if s.schedule, err = delivery.ParseSchedule(text); err != nil {
		return nil, fmt.Errorf("webhook schedule %q: %w", text, err)
	}
	if s.queue, err = tpl.Queue(JobsQueue); err != nil {
		return nil, err
	}
	if s.statusRules, err = statusRules(tpl); err != nil {
		return nil, err
	}
	return &s, nil
}

// statusRules reads NotifyFunction's EventBridgeRule events: which machines'
// status changes reach notify.
func statusRules(tpl *template.Template) ([]local.StatusRule, error) {
	fn, err := tpl.Function(NotifyFunction)
	if err != nil {
		return nil, err
	}
	var rules []local.StatusRule
	for name, ev := range fn.Events() {
		if ev.Type != "EventBridgeRule" {
			continue
		}
		pattern, err := tpl.Eval(ev.Properties["Pattern"], resolve)
		if err != nil {
			return nil, fmt.Errorf("%s event %s: %w", NotifyFunction, name, err)
		}
		p, _ := pattern.(map[string]any)
		detail, _ := p["detail"].(map[string]any)
		var statuses []longrun.Status
		for _, s := range asStrings(detail["status"]) {
			statuses = append(statuses, longrun.Status(s))
		}
		for _, arn := range asStrings(detail["stateMachineArn"]) {
			rules = append(rules, local.StatusRule{Machine: arn[strings.LastIndex(arn, ":")+1:], Statuses: statuses, Function: NotifyFunction})
		}
	}
	if len(rules) == 0 {
		return nil, fmt.Errorf("%s has no EventBridgeRule on state machine status changes", NotifyFunction)
	}
	return rules, nil
}

func asStrings(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// resolve answers the template's references to resources with local names.
func resolve(name, attr string) (string, error) {
	switch name {
	case "AWS::Region":
		return region, nil
	case "AWS::AccountId":
		return accountID, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::StackName":
		return stackName, nil
	case "AWS::URLSuffix":
		return "localhost", nil
	}
	switch {
	case (name == JobsQueue || name == LongJobsQueue) && attr == "":
		return queueURL(name), nil
	case name == NotifyFunction && attr == "Arn":
		return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, accountID, name), nil
	case (name == MainStateMachine || name == DeliverStateMachine) && (attr == "" || attr == "Arn"):
		return machineARN(name), nil
	}
	if attr != "" {
		name += "." + attr
	}
	return "", fmt.Errorf("longrun dev has no local stand-in for %s", name)
}

func queueURL(logicalID string) string {
	return fmt.Sprintf("http://sqs.%s.localhost/%s/%s", region, accountID, logicalID)
}

func machineARN(logicalID string) string {
	return fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", region, accountID, logicalID)
}

func (a *App) assemble(ctx context.Context, tpl *template.Template, s *settings, cfg Config) error {
	kinds := cfg.Jobs
	if kinds == nil {
		kinds = longrun.NewRegistry()
		ramen.Register(kinds, float64(s.ramenTimer))
	}
	// The same bound as on AWS, so a kind that runs here also runs there
	// (on `longrun worker`; the Lambda worker's 15 minutes are checked by
	// the worker function).
	if err := kinds.CheckTimeouts(longrun.MaxJobTimeout, longrun.MaxJobTimeoutReason); err != nil {
		return fmt.Errorf("job kinds: %w", err)
	}
	jobs := sqlite.NewQueue(a.DB, JobsQueue, sqlite.QueueConfig{MaxReceiveCount: s.queue.MaxReceiveCount, DeadLetter: s.queue.DeadLetterQueue})
	a.jobs = jobs

	var machines []local.Machine
	for _, id := range []string{MainStateMachine, DeliverStateMachine} {
		sm, err := tpl.StateMachine(id)
		if err != nil {
			return err
		}
		def, err := tpl.Definition(sm)
		if err != nil {
			return err
		}
		subs, err := tpl.Substitutions(sm, resolve)
		if err != nil {
			return err
		}
		if def, err = asl.Substitute(def, subs); err != nil {
			return fmt.Errorf("state machine %s: %w", id, err)
		}
		machines = append(machines, local.Machine{Name: id, ARN: machineARN(id), Definition: def})
	}

	policy := delivery.Policy{AllowLoopback: cfg.AllowLoopbackWebhooks}
	// notify and the engine need each other: notify starts the deliver
	// machine, the engine invokes notify. The engine is set before Run.
	var engine *local.Engine
	notifier := notify.New(notify.Config{
		Store:       a.Executions,
		Tenants:     a.Tenants,
		Redeliver:   func(ctx context.Context, id string, round int) error { return engine.Redeliver(ctx, id, round) },
		Sender:      delivery.NewSender(delivery.Config{Policy: policy, Clock: a.DB.Clock}),
		Schedule:    delivery.Schedule{Delays: s.schedule},
		Clock:       a.DB.Clock,
		Logger:      a.log.With("function", "notify"),
		DescribeURL: a.describeURL,
	})
	a.notifier = notifier
	engine, err := local.New(ctx, local.Config{
		DB:        a.DB,
		Clock:     a.DB.Clock,
		Logger:    a.log.With("component", "engine"),
		Machines:  machines,
		Main:      MainStateMachine,
		Deliver:   DeliverStateMachine,
		Functions: map[string]local.Function{NotifyFunction: notifier.Handle},
		// One queue under both URLs: the in-process worker runs every kind,
		// so the routing that matters on AWS changes nothing here but the
		// state input, which stays the same as there.
		Queues:      map[string]longrun.Queue{queueURL(JobsQueue): jobs, queueURL(LongJobsQueue): jobs},
		StatusRules: s.statusRules,
	})
	if err != nil {
		return fmt.Errorf("local engine: %w", err)
	}
	a.Engine = engine

	atomic := starter{store: a.Executions, engine: engine, maxRunning: cmp.Or(cfg.MaxRunning, DefaultMaxRunning)}
	apiHandler := api.NewServer(api.Config{
		Executions:       a.Executions,
		Tenants:          a.Tenants,
		Orchestrator:     engine,
		Starter:          atomic,
		Stopper:          atomic,
		Authenticate:     bearerAuthIn(a.Tenants, cfg.DataDir),
		CheckCallbackURL: func(u string) error { return checkCallbackURL(u, policy) },
		Limits:           s.limits,
		QueueWait:        s.queueWait,
		Queues:           s.routing,
		Jobs:             kinds,
		Clock:            a.DB.Clock,
		Logger:           a.log.With("component", "api"),
		RatePerTenant:    cfg.RatePerTenant,
		BurstPerTenant:   int(2 * cfg.RatePerTenant),
		// Polling the local app is cheap: clients that honour Retry-After
		// (longrun wait) see the end within a second.
		RetryAfter: time.Second,
		// The engine's own row says which state an execution is in (the
		// live line of longrun wait shows it); it is logged, not fatal, when
		// it cannot be read.
		CurrentState: func(ctx context.Context, e *longrun.Execution) string {
			st, err := engine.CurrentState(ctx, e.ARN)
			if err != nil {
				a.log.WarnContext(ctx, "current state", "execution_id", e.ID, "err", err)
			}
			return st
		},
	})
	ui, err := console.New(console.Config{
		Authenticate: api.BearerAuth(a.Tenants),
		Executions:   a.Executions,
		History:      engine.History,
		Definition:   machines[0].Definition,
		Logger:       a.log.With("component", "console"),
	})
	if err != nil {
		return fmt.Errorf("web console: %w", err)
	}
	a.Handler = withConsole(apiHandler, ui)

	workers := cmp.Or(max(cfg.Workers, 0), 8)
	share := cfg.TenantWorkers
	if share <= 0 {
		share = max(1, workers-max(1, workers/8))
	}
	// The worker runs on the database's clock, as the engine and the queue
	// do: one fake clock drives all three in tests.
	clock := a.DB.Clock
	a.poller = worker.NewPoller(worker.PollerConfig{
		Queue: newFairQueue(jobs, a.Executions, share, clock),
		Processor: worker.NewProcessor(worker.Config{
			Tasks:      engine,
			Executions: a.Executions,
			Jobs:       kinds,
			// Heartbeats learn whether a task is gone (stopped, timed
			// out); three per lease, as the lease is renewed.
			HeartbeatInterval: time.Duration(s.limits.HeartbeatSeconds) * time.Second / 3,
			Clock:             clock,
			Logger:            a.log.With("component", "worker"),
		}),
		Clock:       clock,
		Concurrency: workers,
		// The message is the job's lease (JobHeartbeatSeconds, as on AWS):
		// a worker that hangs without renewing it loses the job to another.
		Visibility: time.Duration(s.limits.HeartbeatSeconds) * time.Second,
		// Ctrl-C should not take long: a job cut off here is not lost, its
		// message is released for the next start (or the restart's release).
		DrainTimeout: 5 * time.Second,
		Logger:       a.log.With("component", "worker"),
	})
	return nil
}

// checkCallbackURL is the API's check with the hint a developer needs: a
// receiver on this machine is refused unless longrun dev was started with
// --allow-loopback-webhooks.
func checkCallbackURL(raw string, p delivery.Policy) error {
	err := delivery.CheckURL(raw, p)
	if err == nil || p.AllowLoopback {
		return err
	}
	if delivery.CheckURL(raw, delivery.Policy{Ports: p.Ports, RequireHTTPS: p.RequireHTTPS, AllowLoopback: true}) == nil {
		return longrun.Errorf(longrun.EINVALID, "%s (a receiver on this machine needs longrun dev --allow-loopback-webhooks)", longrun.ErrorMessage(err))
	}
	return err
}

// withConsole serves the web console at /ui/ beside the API, and sends a
// browser that opens the bare address there instead of to a 401.
func withConsole(apiHandler, ui http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", apiHandler)
	mux.Handle("/ui/", ui)
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			apiHandler.ServeHTTP(w, r) // an API client: answer as the API does
			return
		}
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	return mux
}

// ConsoleURL is the console's address at baseURL, signed in with apiKey:
// the key rides in the fragment, which browsers never send to a server.
func ConsoleURL(baseURL, apiKey string) string {
	return strings.TrimRight(baseURL, "/") + "/ui/#key=" + url.QueryEscape(apiKey)
}

// bearerAuthIn checks API keys as on AWS, and says where this server looks
// when a key is unknown: the commonest cause locally is a key made by
// `longrun keys create` in another data directory.
func bearerAuthIn(tenants longrun.TenantStore, dataDir string) func(*http.Request) (string, error) {
	check := api.BearerAuth(tenants)
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	return func(r *http.Request) (string, error) {
		tenant, err := check(r)
		if longrun.IsCode(err, longrun.EUNAUTHORIZED) && strings.HasPrefix(longrun.ErrorMessage(err), "unknown API key") {
			return "", longrun.Errorf(longrun.EUNAUTHORIZED,
				"unknown API key: this server reads its keys from the data directory %s; create one there with 'longrun keys create --data-dir %s --tenant <tenant>' (or set LONGRUN_DATA_DIR)",
				dataDir, dataDir)
		}
		return tenant, err
	}
}

func (a *App) describeURL(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.baseURL + "/executions/" + id
}

// Serve runs the engine, the worker and the HTTP API on ln until ctx ends,
// then shuts them down in order: stop taking requests, drain the worker,
// stop the engine.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	a.mu.Lock()
	if a.baseURL == "" {
		a.baseURL = "http://" + ln.Addr().String()
	}
	a.mu.Unlock()

	// The engine outlives the worker's drain (the drained jobs still report
	// to it), so it has its own context.
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.Engine.Run(engineCtx); err != nil && !errors.Is(err, context.Canceled) {
			errs <- fmt.Errorf("engine: %w", err)
		}
	})
	wg.Go(func() { a.sweep(ctx) })
	wg.Go(func() { a.resumeDeliveries(ctx) })
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		if err := a.poller.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errs <- fmt.Errorf("worker: %w", err)
		}
	}()
	limited := newConnLimiter(ln, a.maxConns)
	srv := &http.Server{
		Handler: a.Handler,
		// Every request is small and quick (bodies are at most 256 KiB), so
		// a client slower than these is broken or hostile. A handler that
		// streams must extend its write deadline (http.ResponseController).
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ConnState:         limited.track,
	}
	go func() {
		if err := srv.Serve(limited); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("http: %w", err)
		}
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
		cancel()
	}
	shutdown, cancelShutdown := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelShutdown()
	_ = srv.Shutdown(shutdown)
	<-workerDone // the poller drains once ctx is done (or the error above ended it)
	stopEngine()
	wg.Wait()
	return err
}

// Close closes the SQLite file and gives up the data directory.
func (a *App) Close() error { return errors.Join(a.DB.Close(), a.owner.release()) }

// TemplateSubstitutions returns the DefinitionSubstitutions that the template
// at templatePath gives the state machine whose DefinitionUri is the file
// definitionPath, with the local stand-ins longrun dev uses for resources;
// found is false when the template names no such state machine. `longrun asl`
// uses it so a definition of the app validates and runs as it is.
func TemplateSubstitutions(templatePath, definitionPath string) (subs map[string]string, found bool, err error) {
	tpl, err := template.Load(templatePath)
	if err != nil {
		return nil, false, err
	}
	want, err := filepath.Abs(definitionPath)
	if err != nil {
		return nil, false, err
	}
	sms, err := tpl.StateMachines()
	if err != nil {
		return nil, false, err
	}
	for _, sm := range sms {
		p, err := filepath.Abs(filepath.Join(tpl.Dir, filepath.FromSlash(sm.DefinitionURI)))
		if err != nil || p != want {
			continue
		}
		subs, err := tpl.Substitutions(sm, resolve)
		if err != nil {
			return nil, true, err
		}
		return subs, true, nil
	}
	return nil, false, nil
}
