// Command worker runs jobs from the jobs queue (WorkerFunction): an SQS event
// source with ReportBatchItemFailures, running each task message's job kind
// and completing its token through Step Functions. It is built, as a user's
// is, from the registry of the example's jobs through the public API
// (awslambda); template.yaml sets LONGRUN_FUNCTION=worker and the rest of its
// configuration.
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
