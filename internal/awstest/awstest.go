// Package awstest is the test harness for longrun's AWS adapters: it runs the
// AWS emulators in-process on 127.0.0.1 and hands out real aws-sdk-go-v2
// clients pointed at them, so adapter tests exercise the real SDK wire path
// without an AWS account, Docker or any host other than loopback.
//
// Three emulators:
//
//   - kumo (github.com/sivchari/kumo): SQS, DynamoDB, Step Functions (with
//     .waitForTaskToken) and Lambda with its Runtime API. One kumo serves the
//     whole test binary: Kumo(t) starts it on first use.
//   - moto 5.2.1 (the machine image's Python): SQS, DynamoDB, Step Functions
//     running the definitions, Lambda without Docker. One moto process
//     serves the whole test binary: Moto(t) starts it on first use (see
//     moto.go and motoserver.py; docs/emulators.md lists what it fixes).
//   - minidyn (github.com/truora/minidyn): an in-memory DynamoDB. Minidyn(t)
//     starts a fresh one per call, behind its HTTP server, and returns a real
//     *dynamodb.Client for it.
//
// kumo and moto are both an Emulator; a scenario runs on each with
//
//	awstest.OnEach(t, func(t *testing.T, emu awstest.Emulator) { ... })
//
// # API
//
//	k := awstest.Kumo(t)             // process-wide kumo; t only reports failures
//	k.URL                            // base URL, http://127.0.0.1:<port>
//	k.Config()                       // aws.Config for kumo (static creds, us-east-1)
//	k.SQS(), k.DynamoDB(), k.SFN()   // SDK clients
//	q := k.CreateQueue(t, name, attrs)            // q.URL, q.ARN
//	fn := k.ServeFunction(t, name, timeout, h)   // a Lambda function answered in-process by h
//	sm := k.CreateStateMachine(t, name, definition)
//	k.ServeIntegrations(t)           // needed before any execution calls SQS or Lambda
//	awstest.Substitute(def, map[string]string{"JobsQueueUrl": q.URL})
//	awstest.FixHeartbeatPath(def, 30)  // needed before any SendTaskHeartbeat on kumo
//	awstest.UniqueName(prefix)       // names are process-global in kumo; make them unique
//	ddb := awstest.Minidyn(t)        // a fresh in-memory DynamoDB
//	m := awstest.Moto(t)             // process-wide moto; same methods as kumo
//
// # Step Functions integrations and port 4566
//
// kumo's Step Functions engine does not call SQS and Lambda in-process: it
// sends HTTP requests to the fixed address http://localhost:4566. A test that
// runs executions whose states call SQS or Lambda must call
// k.ServeIntegrations(t) first: it puts a loopback reverse proxy on
// 127.0.0.1:4566 in front of this process's kumo. Because the port is fixed
// and `go test` runs several test binaries at once, ServeIntegrations first
// takes an exclusive lock file (os.TempDir()/longrun-awstest-4566.lock): a
// second binary waits (up to IntegrationsLockWait) until the first one exits,
// which releases the lock. If the port is taken by something else (a kumo or
// LocalStack started by hand), the test fails with a message saying so.
//
// # Lambda functions
//
// ServeFunction creates the function in kumo and answers its invocations with
// h, a lambda.Handler from github.com/aws/aws-lambda-go/lambda (wrap a typed
// handler with lambda.NewHandler), by polling kumo's Lambda Runtime API
// (/_runtime/<name>/2018-06-01/runtime/invocation/next) from a goroutine: the
// same protocol lambda.Start speaks, without the process-wide
// AWS_LAMBDA_RUNTIME_API variable and os.Exit of lambda.Start, so many
// functions can run in one test binary. It returns once kumo routes
// invocations to the poller, so the first invocation never races it. To run
// a built Lambda binary instead, start it with
// AWS_LAMBDA_RUNTIME_API=<k.URL without http://>/_runtime/<name>.
//
// # Where kumo v0.33.1 differs from AWS (seen by longrun's tests)
//
//   - Step Functions: a heartbeat for a task with HeartbeatSecondsPath panics
//     the emulator (FixHeartbeatPath); a heartbeat timeout is States.Timeout,
//     not States.HeartbeatTimeout; a Fail state's ErrorPath/CausePath are
//     ignored (the execution fails with an empty error); a Lambda function's
//     error (X-Amz-Function-Error) is taken as its result; a repeated
//     StartExecution of a running execution with the same input answers
//     ExecutionAlreadyExists; JitterStrategy is ignored; $$ has only
//     Task.Token; executions end after 5 minutes at most.
//   - SQS: a long poll does not wake when an in-flight message becomes
//     visible again, only on Send; DeleteMessage with a stale receipt fails
//     with ReceiptHandleIsInvalid (AWS succeeds and keeps the message).
//   - DynamoDB: no reserved-word check in expressions (minidyn has one), no
//     400 KB item limit (neither has), no ReturnValuesOnConditionCheckFailure.
package awstest

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Region and AccountID are what kumo reports in every ARN it makes.
const (
	Region    = "us-east-1"
	AccountID = "000000000000"
)

// UniqueName returns prefix followed by a random suffix. kumo's queues, state
// machines and functions are shared by every test in the binary, so each test
// names its own. The result is at most len(prefix)+13 characters of
// [A-Za-z0-9_-] when prefix is, which every service here accepts.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Substitute replaces each ${Name} in definition with vars[Name], as SAM's
// DefinitionSubstitutions do for statemachine/*.asl.json.
func Substitute(definition string, vars map[string]string) string {
	pairs := make([]string, 0, 2*len(vars))
	for k, v := range vars {
		pairs = append(pairs, "${"+k+"}", v)
	}
	return strings.NewReplacer(pairs...).Replace(definition)
}
