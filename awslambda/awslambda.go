// Package awslambda runs longrun's Lambda functions with your jobs compiled
// in. On AWS the start function (it checks a start's job kind and input
// schema) and the worker (it runs the jobs) must contain your code, so your
// own module builds them: one binary whose main is
//
//	func main() {
//		reg := longrun.NewRegistry()
//		reg.Handle("export", export.Run, longrun.JobOptions{Timeout: 10 * time.Minute})
//		awslambda.Main(reg)
//	}
//
// deployed as every function of longrun's template.yaml, each with
// LONGRUN_FUNCTION naming which one it is (start, describe, stop,
// redeliver, authorizer, worker, notify, settle). longrun's own source is never
// edited: upgrading longrun is a `go get`. docs/sam.md § "Your own jobs on
// AWS" has the design, docs/jobs.md how to write a job.
package awslambda

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awsapp"
)

// EnvFunction names the function a process serves; template.yaml sets it on
// each function.
const EnvFunction = "LONGRUN_FUNCTION"

// The functions Main serves, by the name EnvFunction gives.
const (
	Start      = "start"
	Describe   = "describe"
	Stop       = "stop"
	Redeliver  = "redeliver"
	Authorizer = "authorizer"
	Worker     = "worker"
	Notify     = "notify"
	Settle     = "settle"
)

// Functions lists the names Main serves.
func Functions() []string {
	return []string{Start, Describe, Stop, Redeliver, Authorizer, Worker, Notify, Settle}
}

// Main is the whole body of a Lambda function's main: it serves the
// function EnvFunction names, with reg's job kinds, configured from the
// environment template.yaml sets, its SDK clients built once, before the
// first invocation. A configuration the function cannot run with — no or an
// unknown LONGRUN_FUNCTION, a missing variable, a kind whose Timeout the
// deployment cannot honour — is logged and ends the process at init, naming
// what to fix. Main returns only if the Lambda runtime does.
func Main(reg *longrun.Registry) {
	name := os.Getenv(EnvFunction)
	log := awsapp.NewLogger(os.Stdout, cmp.Or(name, "longrun"), os.Getenv)
	h, err := Handler(context.Background(), name, reg, os.Getenv, log)
	if err != nil {
		log.Error("init failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}

// Handler returns the handler of function name with reg's job kinds, for
// lambda.Start: what Main serves, for a main that needs to wrap it (and for
// tests). getenv is the environment (os.Getenv on AWS).
func Handler(ctx context.Context, name string, reg *longrun.Registry, getenv func(string) string, log *slog.Logger) (any, error) {
	if reg == nil || len(reg.Kinds()) == 0 {
		return nil, fmt.Errorf("awslambda: the registry has no job kinds: register at least one with Registry.Handle")
	}
	handler, ok := handlers[name]
	if !ok {
		return nil, fmt.Errorf("awslambda: %s=%q is not a longrun function; want one of %s (template.yaml sets it on each function)",
			EnvFunction, name, strings.Join(Functions(), ", "))
	}
	app, err := awsapp.FromEnv(ctx, getenv, log)
	if err != nil {
		return nil, fmt.Errorf("awslambda: %s: %w", name, err)
	}
	app.Jobs = reg
	h, err := handler(app)
	if err != nil {
		return nil, fmt.Errorf("awslambda: %w", err)
	}
	return h, nil
}

// handlers are the handler constructors by function name.
var handlers = map[string]func(*awsapp.App) (any, error){
	Start:      as((*awsapp.App).Start),
	Describe:   as((*awsapp.App).Describe),
	Stop:       as((*awsapp.App).Stop),
	Redeliver:  as((*awsapp.App).Redeliver),
	Authorizer: as((*awsapp.App).Authorizer),
	Worker:     as((*awsapp.App).Worker),
	Notify:     as((*awsapp.App).Notify),
	Settle:     as((*awsapp.App).Settle),
}

func as[H any](f func(*awsapp.App) (H, error)) func(*awsapp.App) (any, error) {
	return func(a *awsapp.App) (any, error) { return f(a) }
}
