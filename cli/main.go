// Package cli is the whole longrun command line — dev, worker, start,
// describe, wait, stop, list, redeliver, history, keys, asl, webhook, init —
// as a library, so a module of its own jobs builds its own `longrun` binary
// with them compiled in:
//
//	func main() {
//		reg := longrun.NewRegistry()
//		reg.Handle("export", export.Run, longrun.JobOptions{})
//		cli.Main(reg)
//	}
//
// `dev` runs the registry's jobs in-process, `worker` runs them from a
// deployed stack's SQS queue. The app `dev` serves (template.yaml and its
// state machines) is built into the binary: longrun's own by default, the
// project's with Files, or a file named by --template.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/term"
)

// Main runs the command line of os.Args with reg's jobs and exits: 0 on
// success, 1 on an error (printed once to stderr), another code where a
// command says so (`wait` on a failed execution exits 2). A nil reg runs
// longrun's example job, the ramen timer, only. SIGINT and SIGTERM cancel
// the command's context: `dev` and `worker` shut down cleanly.
func Main(reg *longrun.Registry) { MainWith(reg) }

// MainWith is Main with options, such as the project's own template and state
// machines built into the binary (Files).
func MainWith(reg *longrun.Registry, opts ...Option) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, reg, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr, opts...); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, term.ErrorLine(err))
		os.Exit(1)
	}
}
