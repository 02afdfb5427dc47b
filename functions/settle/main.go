// Command settle runs every minute (SettleFunction, on a schedule) and
// settles executions whose start was cut short between the DynamoDB record
// and StartExecution: it starts them, or fails them with a webhook
// (internal/settle). It starts state machines with the input the start
// function gives, so it is built, as start is, from the registry of the
// example's jobs through the public API (awslambda); template.yaml sets
// LONGRUN_FUNCTION=settle and the rest of its configuration.
package main

import (
	"os"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/awslambda"
	"github.com/longrun/longrun/jobs/ramen"
)

func main() {
	reg := longrun.NewRegistry()
	// A malformed value fails awslambda.Main's init, which reads it too.
	seconds, _ := ramen.SecondsFromEnv(os.Getenv)
	ramen.Register(reg, seconds)
	awslambda.Main(reg)
}
