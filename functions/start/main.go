// Command start serves POST /start-execution (StartFunction): it records the execution
// and starts the longrun state machine.
// Configuration comes from the environment template.yaml sets; see
// internal/awsapp.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/longrun/longrun/internal/awsapp"
)

func main() {
	log := awsapp.NewLogger(os.Stdout, "start", os.Getenv)
	// Clients are built once, here, and reused by every invocation.
	app, err := awsapp.FromEnv(context.Background(), os.Getenv, log)
	if err != nil {
		fail(log, err)
	}
	handler, err := app.Start()
	if err != nil {
		fail(log, err)
	}
	lambda.Start(handler)
}

func fail(log *slog.Logger, err error) {
	log.Error("init failed", "err", err)
	os.Exit(1)
}
