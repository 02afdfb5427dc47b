// Command longrun is the longrun CLI with the example job, the ramen timer,
// registered through the same public API a project of its own jobs uses
// (package cli holds the whole command line).
package main

import (
	"fmt"
	"os"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/cli"
	"github.com/longrun/longrun/jobs/ramen"
)

func main() {
	seconds, err := ramen.SecondsFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "longrun:", err)
		os.Exit(1)
	}
	reg := longrun.NewRegistry()
	ramen.Register(reg, seconds)
	cli.Main(reg)
}
