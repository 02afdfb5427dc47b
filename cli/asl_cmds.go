package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/longrun/longrun/internal/asl"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/urfave/cli/v3"
)

func aslCommand(env envSource) *cli.Command {
	subFlag := &cli.StringSliceFlag{Name: "sub", Usage: "a DefinitionSubstitution NAME=VALUE (repeatable), for ${NAME} in the file"}
	return &cli.Command{
		Name:  "asl",
		Usage: "validate and run Amazon States Language definitions locally",
		Commands: []*cli.Command{
			{
				Name:      "validate",
				Usage:     "list every problem in a definition (exit status 1 if there is any)",
				ArgsUsage: "FILE",
				Flags:     []cli.Flag{subFlag, templateFlag()},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if _, err := loadDefinition(cmd); err != nil {
						return err
					}
					fmt.Fprintf(cmd.Root().Writer, "%s: valid\n", cmd.Args().First())
					return nil
				},
			},
			{
				Name:  "run",
				Usage: "run a definition in memory, tasks answered from a mock file; the output is the last line of stdout",
				Description: "The mock file maps state names to answers used in order, the last one repeating:\n" +
					`  {"Work": [{"Throw": {"Error": "States.HeartbeatTimeout", "Cause": "lost"}}, {"Return": {"ok": true}}]}` + "\n" +
					"statemachine/longrun.mock.json is an example. A definition that --template names gets its DefinitionSubstitutions.\n" +
					"Waits and retry backoffs are skipped (their times still appear in --history).",
				ArgsUsage: "FILE",
				Flags: []cli.Flag{
					subFlag, templateFlag(),
					&cli.StringFlag{Name: "input", Usage: "execution input (JSON)", Value: "{}"},
					&cli.StringFlag{Name: "mock", Usage: "mock file answering Task states"},
					&cli.BoolFlag{Name: "history", Usage: "print the execution history before the output"},
				},
				Action: aslRun,
			},
		},
	}
}

// loadDefinition reads, substitutes and parses the definition named by the
// first argument; a *asl.ValidationError becomes one line per problem.
func loadDefinition(cmd *cli.Command) (*asl.StateMachine, error) {
	path := cmd.Args().First()
	if path == "" {
		return nil, errors.New("name the definition file, e.g. statemachine/longrun.asl.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read definition: %w", err)
	}
	// A definition the template names gets the template's substitutions,
	// as sam deploy gives them; --sub overrides any of them.
	subs, _, err := devapp.TemplateSubstitutions(cmd.String("template"), path)
	if err != nil && cmd.IsSet("template") {
		return nil, fmt.Errorf("--template: %w", err)
	}
	if subs == nil {
		subs = map[string]string{}
	}
	for _, kv := range cmd.StringSlice("sub") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--sub %q: want NAME=VALUE", kv)
		}
		subs[k] = v
	}
	data, err = asl.Substitute(data, subs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (pass --sub NAME=VALUE)", path, err)
	}
	m, err := asl.Parse(data)
	var verr *asl.ValidationError
	if errors.As(err, &verr) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %d problem(s):", path, len(verr.Problems))
		for _, p := range verr.Problems {
			fmt.Fprintf(&b, "\n  %s", p)
		}
		return nil, &exitError{code: 1, msg: b.String()}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func aslRun(ctx context.Context, cmd *cli.Command) error {
	m, err := loadDefinition(cmd)
	if err != nil {
		return err
	}
	input := json.RawMessage(cmd.String("input"))
	if !json.Valid(input) {
		return fmt.Errorf("--input is not valid JSON")
	}
	// A local run answers from mocks, so there is nothing to wait for: a
	// Wait or a retry backoff moves a virtual clock forward instead, so the
	// times in --history and the execution's TimeoutSeconds are those of a
	// real run.
	vc := &virtualClock{start: time.Now()}
	opts := asl.RunOptions{Clock: vc}
	opts.Invoke = func(context.Context, *asl.Task, string) (json.RawMessage, error) {
		return nil, &asl.TaskError{Name: asl.ErrTaskFailed, Cause: "no --mock file answers this task"}
	}
	if f := cmd.String("mock"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read mock: %w", err)
		}
		if opts.Invoke, err = asl.LoadMock(data); err != nil {
			return fmt.Errorf("mock %s: %w", f, err)
		}
	}
	res, err := asl.Run(ctx, m, input, opts)
	if err != nil {
		return err
	}
	w := cmd.Root().Writer
	if cmd.Bool("history") {
		for _, ev := range res.History {
			line, _ := json.Marshal(ev)
			fmt.Fprintln(w, string(line))
		}
	}
	if res.Status != asl.StatusSucceeded {
		return &exitError{code: 1, msg: fmt.Sprintf("execution %s: %s: %s", res.Status, res.Error, res.Cause)}
	}
	out := res.Output
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, out); err != nil {
		return fmt.Errorf("execution output: %w", err)
	}
	fmt.Fprintln(w, b.String())
	return nil
}

// virtualClock is real time plus every wait skipped so far: a
// longrun.Clock whose waits end at once. asl.Run calls it from one
// goroutine.
type virtualClock struct {
	start   time.Time
	skipped time.Duration
}

func (c *virtualClock) Now() time.Time {
	return c.start.Add(time.Since(c.start) + c.skipped).UTC()
}

// Until skips the time up to t and ends the wait at once.
func (c *virtualClock) Until(t time.Time) (<-chan struct{}, func()) {
	if d := t.Sub(c.Now()); d > 0 {
		c.skipped += d
	}
	done := make(chan struct{})
	close(done)
	return done, func() {}
}
