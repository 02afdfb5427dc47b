package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v3"
)

// run is the whole program: main only adds the process (signals, exit codes),
// so tests run it in-process with their own args, environment and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	env := envSource(getenv)
	app := &cli.Command{
		Name:  "longrun",
		Usage: "an asynchronous job API: start long jobs over HTTP, poll or get a signed webhook when they end",
		Description: "On one machine: `longrun dev` serves the whole app on 127.0.0.1.\n" +
			"On AWS: deploy template.yaml with `sam build && sam deploy --guided`, then use the same client commands with --url.",
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are returned to main, which prints them once and picks the exit code.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		Commands: []*cli.Command{
			devCommand(env),
			workerCommand(env),
			startCommand(env),
			describeCommand(env),
			waitCommand(env),
			stopCommand(env),
			listCommand(env),
			redeliverCommand(env),
			historyCommand(env),
			keysCommand(env),
			webhookCommand(env),
			aslCommand(env),
		},
	}
	return app.Run(ctx, args)
}

// exitError ends the program with code after printing msg (if any) to stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }

// envSource builds flag value sources from the injected environment, so tests
// never depend on the process environment and --help still shows [$VAR].
type envSource func(string) string

func (g envSource) vars(keys ...string) cli.ValueSourceChain {
	var c cli.ValueSourceChain
	for _, k := range keys {
		c.Chain = append(c.Chain, envVar{key: k, getenv: g})
	}
	return c
}

type envVar struct {
	key    string
	getenv func(string) string
}

func (e envVar) Lookup() (string, bool) {
	v := e.getenv(e.key)
	return v, v != ""
}
func (e envVar) IsFromEnv() bool  { return true }
func (e envVar) String() string   { return "environment variable " + e.key }
func (e envVar) GoString() string { return fmt.Sprintf("envVar{%q}", e.key) }
func (e envVar) Key() string      { return e.key }
