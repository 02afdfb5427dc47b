// Command longrun is the longrun CLI: `longrun dev` runs the whole app on one
// machine; `longrun worker` runs jobs from SQS for hours; start, describe, wait,
// stop, list and redeliver talk to any longrun API; keys, webhook and asl are
// tools for tenants, receivers and state machine authors. `longrun --help` lists
// them all.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "longrun:", err)
		os.Exit(1)
	}
}
