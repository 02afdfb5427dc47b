package awsapp

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

// Main is the whole body of a function's main: a JSON logger named after the
// function, the configuration from the environment, the SDK clients built
// once (outside the handler, reused by every invocation), the function's
// handler, lambda.Start. A configuration the function cannot run with is
// logged and ends the process before the first invocation, naming what is
// missing.
func Main[H any](function string, handler func(*App) (H, error)) {
	log := NewLogger(os.Stdout, function, os.Getenv)
	app, err := FromEnv(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("init failed", "err", err)
		os.Exit(1)
	}
	h, err := handler(app)
	if err != nil {
		log.Error("init failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
