package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/longrun/longrun/client"
	"github.com/longrun/longrun/internal/term"
	"github.com/urfave/cli/v3"
)

// apiFlags are the flags every API client command takes.
func apiFlags(env envSource) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "url", Usage: "base URL of the longrun API (longrun dev prints it; on AWS, the stack's ApiUrl output)", Value: "http://127.0.0.1:3000", Sources: env.vars("LONGRUN_URL")},
		&cli.StringFlag{Name: "api-key", Usage: "API key (longrun dev prints one; longrun keys create makes more)", Sources: env.vars("LONGRUN_API_KEY")},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json or text (default: text on a terminal, json otherwise)", Sources: env.vars("LONGRUN_OUTPUT")},
	}
}

func apiClient(cmd *cli.Command) (*client.Client, error) {
	key := cmd.String("api-key")
	if key == "" {
		return nil, fmt.Errorf("no API key: pass --api-key or set LONGRUN_API_KEY (longrun dev prints one at start)")
	}
	return client.New(cmd.String("url"), key), nil
}

func startCommand(env envSource) *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "start an execution; prints its record (202)",
		ArgsUsage: "[INPUT-JSON | @FILE | -]",
		Flags: append(apiFlags(env),
			&cli.StringFlag{Name: "job", Usage: "the kind of job to run (default: the deployment's first kind)"},
			&cli.StringFlag{Name: "callback-url", Usage: "https URL that receives the signed webhook when the execution ends"},
			&cli.StringFlag{Name: "name", Usage: "a label of your own for the execution"},
			&cli.StringFlag{Name: "idempotency-key", Usage: "the same key and input within 24 h return the original execution"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for the execution to end (exit status 0 only if it SUCCEEDED)"},
		),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			input, err := readInput(cmd.Args().First(), cmd.Root().Reader)
			if err != nil {
				return err
			}
			e, err := c.Start(ctx, client.StartRequest{Input: input, Job: cmd.String("job"), CallbackURL: cmd.String("callback-url"), Name: cmd.String("name")}, cmd.String("idempotency-key"))
			if err != nil {
				return err
			}
			if len(e.Input) == 0 {
				e.Input = input // the start answer has no input: show what was sent
			}
			if cmd.Bool("wait") {
				fmt.Fprintf(cmd.Root().ErrWriter, "started %s with input %s\n", e.ExecutionID, input)
				return waitFor(ctx, cmd, c, e.ExecutionID)
			}
			return show(cmd, e)
		},
	}
}

func describeCommand(env envSource) *cli.Command {
	return executionCommand(env, &cli.Command{
		Name:  "describe",
		Usage: "print an execution's record",
	}, func(ctx context.Context, cmd *cli.Command, c *client.Client, id string) error {
		e, err := c.Describe(ctx, id)
		if err != nil {
			return err
		}
		return show(cmd, e)
	})
}

func waitCommand(env envSource) *cli.Command {
	return executionCommand(env, &cli.Command{
		Name:  "wait",
		Usage: "show status and progress until the execution ends; exit status 0 only if it SUCCEEDED",
	}, waitFor)
}

// waitFor shows the execution until it ends: on a terminal one live line,
// otherwise one line per change on stderr; then the final record on stdout.
// A final status other than SUCCEEDED is exit status 2; Ctrl-C stops the
// waiting, not the execution (exit status 130).
func waitFor(ctx context.Context, cmd *cli.Command, c *client.Client, id string) error {
	stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
	asJSON, err := term.JSONOutput(cmd.String("output"), stdout)
	if err != nil {
		return err
	}
	o := term.WaitOptions{Live: !asJSON && term.IsTerminal(stdout), Out: stderr, Interval: time.Second}
	if o.Live {
		o.Out = stdout
	}
	e, err := term.Wait(ctx, c, id, o)
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: 130, msg: fmt.Sprintf("stopped waiting; execution %s goes on (longrun wait %s)", id, id)}
		}
		return err
	}
	if err := show(cmd, e); err != nil {
		return err
	}
	if e.Status != "SUCCEEDED" {
		msg := fmt.Sprintf("execution %s ended %s", e.ExecutionID, e.Status)
		if e.Error != "" {
			msg += fmt.Sprintf(": %s: %s", e.Error, e.Cause)
		}
		return &exitError{code: 2, msg: msg}
	}
	return nil
}

// show prints an execution as --output asks.
func show(cmd *cli.Command, e *client.Execution) error {
	asJSON, err := term.JSONOutput(cmd.String("output"), cmd.Root().Writer)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.Root().Writer, e)
	}
	return term.Describe(cmd.Root().Writer, e)
}

func stopCommand(env envSource) *cli.Command {
	return executionCommand(env, &cli.Command{
		Name:  "stop",
		Usage: "stop a running execution; it ends ABORTED and its webhook says execution.aborted",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "error", Usage: "error name to record"},
			&cli.StringFlag{Name: "cause", Usage: "cause to record"},
		},
	}, func(ctx context.Context, cmd *cli.Command, c *client.Client, id string) error {
		e, err := c.Stop(ctx, id, cmd.String("error"), cmd.String("cause"))
		if err != nil {
			return err
		}
		return show(cmd, e)
	})
}

func listCommand(env envSource) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list your executions, newest first",
		Flags: append(apiFlags(env),
			&cli.StringFlag{Name: "status", Usage: "only RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED"},
			&cli.StringFlag{Name: "job", Usage: "only executions of this kind of job"},
			&cli.IntFlag{Name: "limit", Usage: "page size, 1 to 100", Value: 20},
			&cli.StringFlag{Name: "next-token", Usage: "the nextToken of the previous page"},
		),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			asJSON, err := term.JSONOutput(cmd.String("output"), cmd.Root().Writer)
			if err != nil {
				return err
			}
			p, err := c.ListExecutions(ctx, client.ListQuery{
				Status: cmd.String("status"), Job: cmd.String("job"), Limit: int(cmd.Int("limit")), NextToken: cmd.String("next-token")})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.Root().Writer, p)
			}
			return term.List(cmd.Root().Writer, p, time.Now())
		},
	}
}

func redeliverCommand(env envSource) *cli.Command {
	return executionCommand(env, &cli.Command{
		Name:      "redeliver",
		Usage:     "send an ended execution's webhook again (same webhook-id)",
		ArgsUsage: "EXECUTION-ID",
	}, func(ctx context.Context, cmd *cli.Command, c *client.Client, id string) error {
		asJSON, err := term.JSONOutput(cmd.String("output"), cmd.Root().Writer)
		if err != nil {
			return err
		}
		if err := c.Redeliver(ctx, id); err != nil {
			return err
		}
		if asJSON {
			return printJSON(cmd.Root().Writer, map[string]string{"executionId": id, "redelivery": "scheduled"})
		}
		fmt.Fprintf(cmd.Root().Writer, "redelivery of %s scheduled\n", id)
		return nil
	})
}

// executionCommand completes a command that acts on one execution: the API
// flags before its own, one EXECUTION-ID|ARN argument (unless it says
// otherwise), and an action that checks both and builds the client before
// run, so each such command holds only what it does with the execution.
func executionCommand(env envSource, c *cli.Command, run func(ctx context.Context, cmd *cli.Command, c *client.Client, id string) error) *cli.Command {
	c.Flags = append(apiFlags(env), c.Flags...)
	if c.ArgsUsage == "" {
		c.ArgsUsage = "EXECUTION-ID|ARN"
	}
	c.Action = func(ctx context.Context, cmd *cli.Command) error {
		cl, id, err := clientAndID(cmd)
		if err != nil {
			return err
		}
		return run(ctx, cmd, cl, id)
	}
	return c
}

func clientAndID(cmd *cli.Command) (*client.Client, string, error) {
	c, err := apiClient(cmd)
	if err != nil {
		return nil, "", err
	}
	id := cmd.Args().First()
	if id == "" || cmd.Args().Len() > 1 {
		return nil, "", fmt.Errorf("%s takes exactly one execution id or ARN", cmd.Name)
	}
	return c, id, nil
}

// readInput reads the job input: inline JSON, @file, or - for stdin. No
// argument means {}.
func readInput(arg string, stdin io.Reader) (json.RawMessage, error) {
	var data []byte
	var err error
	switch {
	case arg == "":
		return json.RawMessage(`{}`), nil
	case arg == "-":
		data, err = io.ReadAll(stdin)
	case strings.HasPrefix(arg, "@"):
		data, err = os.ReadFile(arg[1:])
	default:
		data = []byte(arg)
	}
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("input is not valid JSON: %.80q", data)
	}
	return json.RawMessage(data), nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
