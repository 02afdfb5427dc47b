package cli

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/longrun/longrun"

	"github.com/longrun/longrun/internal/version"
	"github.com/urfave/cli/v3"
)

// Option changes what Main and Run build in.
type Option func(*settings)

// Files makes fsys the app `longrun dev` and `longrun history` follow when no
// --template is given: fsys holds template.yaml at its root and the state
// machine files it names, typically a go:embed of the project's own
// template.yaml and statemachine/. Without it the binary carries longrun's
// (longrun.SAMFiles).
func Files(fsys fs.FS) Option {
	return func(s *settings) { s.files = fsys }
}

// settings are what the program was built with: the registry and the files.
type settings struct {
	jobs  *longrun.Registry
	files fs.FS
}

// settingsKey is where Run keeps the settings, in the root command's Metadata,
// so each command reads them without a parameter of its own.
const settingsKey = "longrun.settings"

func settingsOf(cmd *cli.Command) *settings {
	s, _ := cmd.Root().Metadata[settingsKey].(*settings)
	if s == nil {
		s = &settings{}
	}
	if s.files == nil {
		s.files = longrun.SAMFiles
	}
	return s
}

// Run is the whole program with reg's jobs: Main only adds the process
// (signals, exit codes), so tests run it in-process with their own args
// (args[0] is the program name), environment and streams. A nil reg is the
// ramen example only.
func Run(ctx context.Context, reg *longrun.Registry, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer, opts ...Option) error {
	s := &settings{jobs: reg}
	for _, o := range opts {
		o(s)
	}
	return runWith(ctx, s, args, getenv, stdin, stdout, stderr)
}

// run is Run with the ramen example, as the package's own tests use it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return Run(ctx, nil, args, getenv, stdin, stdout, stderr)
}

func runWith(ctx context.Context, s *settings, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	env := envSource(getenv)
	app := &cli.Command{
		Name:  "longrun",
		Usage: "an asynchronous job API: start long jobs over HTTP, poll or get a signed webhook when they end",
		Description: "On one machine: `longrun dev` serves the whole app on 127.0.0.1.\n" +
			"On AWS: deploy template.yaml with `sam build && sam deploy --guided`, then use the same client commands with --url.",
		Version: strings.TrimPrefix(version.String(), "longrun "),
		// `longrun completion bash|zsh|fish|pwsh` prints a completion script.
		EnableShellCompletion: true,
		Suggest:               true, // "Did you mean" for a mistyped flag
		Action:                unknownCommand,
		Reader:                stdin,
		Writer:                stdout,
		ErrWriter:             stderr,
		// Errors are returned to main, which prints them once and picks the exit code.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		Metadata:       map[string]any{settingsKey: s},
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
			initCommand(),
			{
				Name:  "version",
				Usage: "print longrun's version",
				Action: func(_ context.Context, cmd *cli.Command) error {
					_, err := fmt.Fprintln(cmd.Root().Writer, version.String())
					return err
				},
			},
		},
	}
	suggest(app.Commands)
	return app.Run(ctx, args)
}

// suggest turns on "Did you mean" for the flags of every command and for
// the subcommands of keys, webhook and asl.
func suggest(cmds []*cli.Command) {
	for _, c := range cmds {
		c.Suggest = true
		if len(c.Commands) > 0 && c.Action == nil {
			c.Action = unknownCommand
		}
		suggest(c.Commands)
	}
}

// unknownCommand runs when no command matched: help without arguments, a
// "did you mean" for a mistyped command.
func unknownCommand(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Len() == 0 {
		if cmd.Root() == cmd {
			return cli.ShowRootCommandHelp(cmd)
		}
		return cli.ShowSubcommandHelp(cmd)
	}
	name := cmd.FullName()
	msg := fmt.Sprintf("%q is not a %s command", cmd.Args().First(), name)
	if s := cli.SuggestCommand(cmd.Commands, cmd.Args().First()); s != "" {
		msg += ". " + fmt.Sprintf(cli.SuggestDidYouMeanTemplate, s)
	}
	return fmt.Errorf("%s (%s --help lists them)", msg, name)
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
