// Command start serves POST /start-execution (StartFunction): it checks the
// job kind and its input schema, records the execution and starts the
// longrun state machine. It is built, as a user's is, from the registry of
// the example's jobs through the public API (awslambda); template.yaml sets
// LONGRUN_FUNCTION=start and the rest of its configuration.
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
