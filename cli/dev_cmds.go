package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awsapp"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/dynamostore"
	"github.com/longrun/longrun/internal/sqlite"
	"github.com/longrun/longrun/internal/tenant"
	"github.com/longrun/longrun/internal/worker"
	"github.com/urfave/cli/v3"
)

func dataDirFlag(env envSource) *cli.StringFlag {
	return &cli.StringFlag{Name: "data-dir", Value: ".longrun", Usage: "directory of the local SQLite file, shared by dev, keys and history", Sources: env.vars("LONGRUN_DATA_DIR")}
}

func templateFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "template", Usage: "a SAM template file to follow (its state machines are read beside it) instead of the one built into this binary"}
}

// appFiles is where the local app's template comes from: the --template
// file, or the files built into the binary.
func appFiles(cmd *cli.Command) (cfg devapp.Config, where string) {
	if path := cmd.String("template"); path != "" {
		return devapp.Config{TemplatePath: path}, path
	}
	return devapp.Config{TemplateFS: settingsOf(cmd).files, TemplatePath: "template.yaml"}, "built into this binary"
}

// absDir is dir made absolute for messages, or dir where that fails.
func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

func devCommand(env envSource) *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run the whole app on this machine: HTTP API, state machines, queue, worker and webhooks, on SQLite",
		Description: "Follows template.yaml (state machines, substitutions, queue settings, parameters) and serves\n" +
			"the same routes as the deployed API, running this binary's jobs. The template and its state machines\n" +
			"are built into the binary, so it runs from any directory; --template follows a file instead.\n" +
			"Everything lives in DATA-DIR/longrun.db (dev, keys and history share it); after a crash or\n" +
			"kill -9, start it again and every execution continues where it was.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:3000", Usage: "address of the HTTP API"},
			dataDirFlag(env),
			templateFlag(),
			&cli.BoolFlag{Name: "allow-loopback-webhooks", Usage: "let callback URLs point at 127.0.0.1 or ::1 (for longrun webhook listen); other private addresses stay refused"},
			&cli.StringFlag{Name: "webhook-schedule", Usage: "delays between webhook attempts, e.g. 1s,5s,30s (default: the template's WebhookSchedule)"},
			&cli.IntFlag{Name: "workers", Value: 8, Usage: "jobs run at once"},
			&cli.IntFlag{Name: "tenant-workers", Usage: "how many of the workers one tenant's jobs may hold at once (default all but an eighth of --workers, at least one kept for the other tenants)"},
			&cli.IntFlag{Name: "max-running", Value: devapp.DefaultMaxRunning, Usage: "executions running at once before start answers 429 with Retry-After; -1 for no bound"},
			&cli.FloatFlag{Name: "rate-limit", Value: 100, Usage: "requests per second each tenant may make (burst twice that) before 429; 0 for no limit"},
			&cli.IntFlag{Name: "max-connections", Value: devapp.DefaultMaxConnections, Usage: "HTTP connections kept open; at the bound the oldest idle one makes room"},
			&cli.DurationFlag{Name: "retention", Value: devapp.DefaultRetention, Usage: "how long ended executions, their history and webhook deliveries are kept (Step Functions: 90 days)"},
			&cli.StringFlag{Name: "tenant", Value: "dev", Usage: "tenant of the API key printed at start"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
			logger, err := textLogger(stderr, cmd.String("log-level"))
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cmd.String("addr"))
			if err != nil {
				return fmt.Errorf("listen on %s: %w", cmd.String("addr"), err)
			}
			defer ln.Close()
			if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
				logger.Warn("the API listens beyond this machine; longrun dev is meant for 127.0.0.1", "addr", ln.Addr().String())
			}
			cfg, where := appFiles(cmd)
			cfg.DataDir = cmd.String("data-dir")
			cfg.AllowLoopbackWebhooks = cmd.Bool("allow-loopback-webhooks")
			cfg.WebhookSchedule = cmd.String("webhook-schedule")
			cfg.Workers = int(cmd.Int("workers"))
			cfg.RatePerTenant = cmd.Float("rate-limit")
			cfg.TenantWorkers = int(cmd.Int("tenant-workers"))
			cfg.MaxRunning = int(cmd.Int("max-running"))
			cfg.Retention = cmd.Duration("retention")
			cfg.MaxConnections = int(cmd.Int("max-connections"))
			cfg.Jobs = settingsOf(cmd).jobs
			cfg.Logger = logger
			cfg.Owner = "http://" + ln.Addr().String()
			app, err := devapp.Open(ctx, cfg)
			if err != nil {
				return err
			}
			defer app.Close()
			key, err := app.DevKey(ctx, cmd.String("tenant"), time.Now())
			if err != nil {
				return err
			}
			printBanner(stdout, "http://"+ln.Addr().String(), key, app, banner{
				dataDir:  absDir(cmd.String("data-dir")),
				template: where,
				jobs:     settingsOf(cmd).jobs,
			})
			return app.Serve(ctx, ln)
		},
	}
}

// banner is what the banner says beyond the app itself.
type banner struct {
	dataDir  string
	template string
	jobs     *longrun.Registry // nil: the ramen example
}

func printBanner(w io.Writer, url string, key *tenant.Key, app *devapp.App, b banner) {
	jobs, input := "ramen", `{"seconds": 2}`
	if b.jobs != nil {
		jobs = strings.Join(b.jobs.Kinds(), ", ")
		if kinds := b.jobs.Kinds(); len(kinds) == 0 || kinds[0] != "ramen" {
			input = "{}"
		}
	}
	fmt.Fprintf(w, `longrun dev is serving %s
  console:  %s
  data dir: %s   (keys and history read it too: --data-dir or LONGRUN_DATA_DIR)
  template: %s
  jobs:     %s   (the first runs when a start names none)
  limits:   job timeout %ds, worker lease %ds; webhook retries after %s

  export LONGRUN_URL=%s
  export LONGRUN_API_KEY=%s        # tenant %q
  export LONGRUN_WEBHOOK_SECRET=%s

  curl -s -X POST $LONGRUN_URL/start-execution \
    -H "Authorization: Bearer $LONGRUN_API_KEY" -H 'Content-Type: application/json' \
    -d '{"input": %s}'

`, url, devapp.ConsoleURL(url, key.APIKey), b.dataDir, b.template, jobs, app.Limits.TimeoutSeconds, app.Limits.HeartbeatSeconds, formatSchedule(app.Schedule),
		url, key.APIKey, key.Tenant, key.WebhookSecret, input)
}

func formatSchedule(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ", ")
}

func textLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func workerCommand(env envSource) *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run jobs from the deployed stack's SQS queue, for jobs longer than Lambda's 15 minutes (ECS, EC2, on-prem)",
		Description: "Configured like the worker Lambda, from the environment: LONGRUN_TABLE_NAME, LONGRUN_JOBS_QUEUE_URL and\n" +
			"LONGRUN_LONG_JOBS_QUEUE_URL (the stack's JobsQueueUrl and LongJobsQueueUrl outputs: it reads both, or the one --queue names),\n" +
			"LONGRUN_JOB_HEARTBEAT_SECONDS (the lease on a running job's message: a poller that dies has its jobs\n" +
			"run again within it) and the usual AWS SDK variables. Its role needs the stack's WorkerPollerPolicyArn.\n" +
			"SIGTERM stops taking messages and lets running jobs finish (then cancels them).",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "concurrency", Value: 4, Usage: "jobs run at once, per queue read"},
			&cli.StringFlag{Name: "queue", Value: "all", Usage: "which queues to read: all (the jobs queue and the long-jobs queue), long (only the kinds too long for the Lambda worker) or jobs"},
			&cli.DurationFlag{Name: "drain-timeout", Value: worker.DefaultDrainTimeout, Usage: "how long running jobs may finish after SIGTERM before they are cancelled; keep it under your platform's stop timeout (ECS: 30s by default)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			getenv := func(k string) string { return env(k) }
			logger := awsapp.NewLogger(cmd.Root().ErrWriter, "worker", getenv)
			app, err := awsapp.FromEnv(ctx, getenv, logger)
			if err != nil {
				return err
			}
			if jobs := settingsOf(cmd).jobs; jobs != nil {
				app.Jobs = jobs
			}
			switch q := cmd.String("queue"); q {
			case "all":
			case "long":
				app.Config.JobsQueueURL = ""
			case "jobs":
				app.Config.LongJobsQueueURL = ""
			default:
				return fmt.Errorf("--queue %q: want all, long or jobs", q)
			}
			p, err := app.Poller(int(cmd.Int("concurrency")), cmd.Duration("drain-timeout"))
			if err != nil {
				return err
			}
			logger.Info("worker polling", "jobs_queue", app.Config.JobsQueueURL, "long_jobs_queue", app.Config.LongJobsQueueURL, "concurrency", cmd.Int("concurrency"))
			return p.Run(ctx)
		},
	}
}

func keysCommand(env envSource) *cli.Command {
	where := []cli.Flag{
		dataDirFlag(env),
		&cli.StringFlag{Name: "table", Usage: "a deployed stack's DynamoDB table (instead of --data-dir); AWS credentials from the environment", Sources: env.vars("LONGRUN_TABLE_NAME")},
	}
	return &cli.Command{
		Name:  "keys",
		Usage: "create and revoke API keys and rotate webhook secrets, locally or in a deployed stack's table",
		Commands: []*cli.Command{
			{
				Name:  "create",
				Usage: `print {"apiKey","tenant","webhookSecret"} for a new key of TENANT (created if new)`,
				Flags: append([]cli.Flag{&cli.StringFlag{Name: "tenant", Required: true, Usage: "tenant id"}}, where...),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					return withTenants(ctx, cmd, func(tenants longrun.TenantStore) error {
						k, err := tenant.CreateKey(ctx, tenants, cmd.String("tenant"), time.Now())
						if err != nil {
							return err
						}
						return json.NewEncoder(cmd.Root().Writer).Encode(k)
					})
				},
			},
			{
				Name:  "revoke",
				Usage: "make an API key stop working (behind API Gateway within the authorizer's 5-minute cache)",
				Flags: append([]cli.Flag{&cli.StringFlag{Name: "key", Required: true, Usage: "the API key to revoke", Sources: env.vars("LONGRUN_REVOKE_KEY")}}, where...),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					return withTenants(ctx, cmd, func(tenants longrun.TenantStore) error {
						if err := tenant.RevokeKey(ctx, tenants, cmd.String("key")); err != nil {
							return err
						}
						fmt.Fprintln(cmd.Root().Writer, "revoked")
						return nil
					})
				},
			},
			{
				Name:  "rotate-secret",
				Usage: "give TENANT a new webhook secret; the old one keeps signing beside it for 24 h",
				Flags: append([]cli.Flag{&cli.StringFlag{Name: "tenant", Required: true, Usage: "tenant id"}}, where...),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					return withTenants(ctx, cmd, func(tenants longrun.TenantStore) error {
						now := time.Now()
						t, err := tenant.RotateSecret(ctx, tenants, cmd.String("tenant"), now)
						if err != nil {
							return err
						}
						return json.NewEncoder(cmd.Root().Writer).Encode(map[string]any{
							"tenant":         t.ID,
							"webhookSecret":  t.Secrets[0].Value,
							"signingSecrets": t.ActiveSecrets(now),
							"overlapUntil":   now.Add(longrun.SecretOverlap).UTC().Format(time.RFC3339),
						})
					})
				},
			},
		},
	}
}

// withTenants opens the tenant store the flags name: a deployed table, or the
// local data dir.
func withTenants(ctx context.Context, cmd *cli.Command, fn func(longrun.TenantStore) error) error {
	if table := cmd.String("table"); table != "" {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("load AWS configuration: %w", err)
		}
		return fn(dynamostore.New(dynamodb.NewFromConfig(cfg), dynamostore.Config{TableName: table}))
	}
	// `keys create` before the first `longrun dev` makes the directory dev
	// will then read.
	if err := os.MkdirAll(cmd.String("data-dir"), 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	db, err := devapp.OpenDB(ctx, cmd.String("data-dir"))
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(sqlite.NewTenantStore(db))
}

func historyCommand(env envSource) *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "print a local execution's history, event by event (as GetExecutionHistory)",
		ArgsUsage: "EXECUTION-ID|ARN",
		Flags:     []cli.Flag{dataDirFlag(env), templateFlag(), &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json (the events as a JSON array) or text"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id := cmd.Args().First()
			if id == "" {
				return errors.New("history takes an execution id or ARN")
			}
			cfg, _ := appFiles(cmd)
			cfg.DataDir = cmd.String("data-dir")
			cfg.Jobs = settingsOf(cmd).jobs
			app, err := devapp.Open(ctx, cfg)
			if err != nil {
				return err
			}
			defer app.Close()
			arn := id
			if !strings.HasPrefix(id, "arn:") {
				arn = app.Engine.ExecutionARN(id)
			}
			events, err := app.Engine.History(ctx, arn)
			if err != nil {
				return err
			}
			w := cmd.Root().Writer
			if cmd.String("output") == "json" {
				return printJSON(w, events)
			}
			for _, ev := range events {
				fmt.Fprintf(w, "%4d  %s  %-26s %-16s %s\n", ev.ID, ev.Timestamp.UTC().Format("15:04:05.000"), ev.Type, ev.State, ev.Detail)
			}
			return nil
		},
	}
}
