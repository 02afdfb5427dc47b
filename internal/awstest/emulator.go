package awstest

import (
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Emulator is what kumo and moto both offer, so a test can run the same
// scenario on each (see Emulators).
type Emulator interface {
	// Name is "kumo" or "moto", for subtest names and messages.
	Name() string
	Config() aws.Config
	SQS() *sqs.Client
	DynamoDB() *dynamodb.Client
	SFN() *sfn.Client
	CreateQueue(t testing.TB, name string, attributes map[string]string) Queue
	CreateStateMachine(t testing.TB, name, definition string) string
	ServeFunction(t testing.TB, name string, timeout time.Duration, h lambda.Handler) Function
	// ServeIntegrations must be called before an execution calls SQS or
	// Lambda (kumo needs it; moto does not).
	ServeIntegrations(t testing.TB)
	// AdaptDefinition fills the emulator's gaps in a state machine
	// definition (kumo: FixHeartbeatPath with heartbeat seconds).
	AdaptDefinition(definition string, heartbeat int) (string, error)
}

var (
	_ Emulator = (*KumoServer)(nil)
	_ Emulator = (*MotoServer)(nil)
)

// Emulators lists the emulators a scenario runs on, by name, each started
// on first use: run a subtest per entry.
var Emulators = []struct {
	Name  string
	Start func(t testing.TB) Emulator
}{
	{"kumo", func(t testing.TB) Emulator { return Kumo(t) }},
	{"moto", func(t testing.TB) Emulator { return Moto(t) }},
}

// OnEach runs fn on each of Emulators, as a parallel subtest named after
// it: the one way a scenario runs on kumo and on moto.
func OnEach(t *testing.T, fn func(t *testing.T, emu Emulator)) {
	t.Helper()
	for _, e := range Emulators {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, e.Start(t))
		})
	}
}
