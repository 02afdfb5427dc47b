package sfnengine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/orchestratortest"
	"github.com/longrun/longrun/internal/sfnengine"
	"github.com/longrun/longrun/internal/sqsqueue"
)

// quirks are the known differences of each emulator from AWS
// (docs/emulators.md), asserted by the suite.
var quirks = map[string]orchestratortest.Quirks{
	"kumo": {FailStateErrorEmpty: true, StoppedTokenClosesLate: true},
	"moto": {LateTaskFailureAccepted: true},
}

// TestConformance runs the orchestrator suite on the real state machines
// in each emulator.
func TestConformance(t *testing.T) {
	t.Parallel()
	awstest.OnEach(t, func(t *testing.T, emu awstest.Emulator) {
		orchestratortest.Run(t, func(t *testing.T) orchestratortest.Harness {
			return conformanceHarness(t, emu, 30)
		})
	})
}

// conformanceHarness deploys the two state machines with a fresh jobs
// queue and notify function for one case. heartbeat is the Work state's
// HeartbeatSeconds where the emulator needs one fixed (see
// awstest.Emulator.AdaptDefinition).
func conformanceHarness(t *testing.T, emu awstest.Emulator, heartbeat int) orchestratortest.Harness {
	t.Helper()
	emu.ServeIntegrations(t)
	jobs := emu.CreateQueue(t, awstest.UniqueName("jobs"), nil)
	notify := make(chan longrun.NotifyRequest, 10)
	fn := emu.ServeFunction(t, awstest.UniqueName("notify"), 10*time.Second, lambda.NewHandler(
		func(_ context.Context, req longrun.NotifyRequest) (any, error) {
			notify <- req
			if req.Action == longrun.NotifyDeliver {
				return longrun.DeliverResult{Done: true}, nil
			}
			return struct{}{}, nil
		}))
	vars := map[string]string{"JobsQueueUrl": jobs.URL, "NotifyFunctionArn": fn.ARN}
	deploy := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "statemachine", name+".asl.json"))
		if err != nil {
			t.Fatal(err)
		}
		def, err := emu.AdaptDefinition(awstest.Substitute(string(b), vars), heartbeat)
		if err != nil {
			t.Fatal(err)
		}
		return emu.CreateStateMachine(t, awstest.UniqueName(name), def)
	}
	client := emu.SFN()
	engine := sfnengine.New(client, sfnengine.Config{StateMachineARN: deploy("longrun"), DeliverStateMachineARN: deploy("deliver")})
	return orchestratortest.Harness{
		Orchestrator: engine,
		Tasks:        engine,
		Jobs:         sqsqueue.New(emu.SQS(), jobs.URL),
		Notify:       notify,
		Describe: func(ctx context.Context, arn string) (orchestratortest.Execution, error) {
			out, err := client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
			if err != nil {
				return orchestratortest.Execution{}, err
			}
			e := orchestratortest.Execution{
				Status: longrun.Status(out.Status), Error: aws.ToString(out.Error), Cause: aws.ToString(out.Cause),
			}
			if out.Output != nil {
				e.Output = []byte(*out.Output)
			}
			return e, nil
		},
		Quirks: quirks[emu.Name()],
	}
}
