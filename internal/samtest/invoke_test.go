package samtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/jobs/ramen"
)

// `make invoke FN=worker EVENT=events/worker.json` runs TestInvoke for one
// function with one event file.
var (
	invokeFn    = flag.String("fn", "", "TestInvoke: only this function (its directory under functions/)")
	invokeEvent = flag.String("event", "", "TestInvoke: this event file instead of events/<fn>.json")
	// make invoke prints this file last, so the answer is not buried in the log.
	invokeAnswer = flag.String("answer", "", "TestInvoke: write the function's answer to this file")
)

// binaries are the functions built as linux bootstraps for this machine's
// architecture, and the Runtime Interface Emulator, built once per test
// binary.
var binaries struct {
	once sync.Once
	dir  string
	rie  string
	err  error
}

// TestMain removes the bootstraps built for TestInvoke (70 MB) when the
// tests end.
func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

func buildBinaries(t *testing.T) (dir, rie string) {
	t.Helper()
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "longrun-bootstraps-")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		// The same flags as the Makefile's build-<LogicalId>, for the host's
		// architecture so the emulator can run them here.
		build := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", dir+string(os.PathSeparator), "./functions/...")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if out, err := build.CombinedOutput(); err != nil {
			binaries.err = fmt.Errorf("build functions: %v\n%s", err, out)
			return
		}
		// `go tool -n` builds the tool (github.com/aws/aws-lambda-runtime-
		// interface-emulator, a tool of go.mod) and prints where it is.
		tool := exec.Command("go", "tool", "-n", "aws-lambda-rie")
		tool.Dir = root
		out, err := tool.Output()
		if err != nil {
			binaries.err = fmt.Errorf("go tool -n aws-lambda-rie: %v", err)
			return
		}
		binaries.rie = strings.TrimSpace(string(out))
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.dir, binaries.rie
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// emulator is one function's bootstrap running under the Runtime Interface
// Emulator on 127.0.0.1.
type emulator struct {
	addr string
	logs *bytes.Buffer
}

// runEmulator starts function fn (a directory under functions/) with the
// environment the template gives its LogicalId, the SDK pointed at kumo.
func (f *fixture) runEmulator(t *testing.T, fn, binary, logicalID string) *emulator {
	t.Helper()
	dir, rie := buildBinaries(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_REGION=" + awstest.Region,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(t.TempDir(), "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(t.TempDir(), "none"),
		"AWS_LAMBDA_FUNCTION_NAME=" + f.stack + "-" + fn,
		"AWS_LAMBDA_FUNCTION_TIMEOUT=60",
	}
	for k, v := range f.env(t, logicalID) {
		if k == "AWS_ENDPOINT_URL" {
			v = f.kumo.URL // what env.json does for `sam local invoke`
		}
		env = append(env, k+"="+v)
	}
	e := &emulator{addr: freePort(t), logs: &bytes.Buffer{}}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", e.addr, "--runtime-api-address", freePort(t), filepath.Join(dir, binary))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the emulator: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("%s under the emulator:\n%s", fn, e.logs)
		}
	})
	return e
}

// invoke posts payload as the function's event and returns its answer.
func (e *emulator) invoke(t *testing.T, payload []byte) []byte {
	t.Helper()
	url := "http://" + e.addr + "/2015-03-31/functions/function/invocations"
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			if time.Now().After(deadline) {
				t.Fatalf("the emulator does not answer on %s: %v", e.addr, err)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("invoke: %s %v: %s", resp.Status, err, body)
		}
		var fnErr struct{ ErrorType, ErrorMessage string }
		if json.Unmarshal(body, &fnErr) == nil && fnErr.ErrorMessage != "" {
			t.Fatalf("the function failed: %s: %s", fnErr.ErrorType, fnErr.ErrorMessage)
		}
		return body
	}
}

// invocation is what TestInvoke does for one function: seed what the event
// needs, give the event the seeded ids, check the answer.
type invocation struct {
	logicalID string
	binary    string // the function's directory under functions/; default the event's name
	// prepare seeds the fixture and returns the event to send, made from
	// the event file's contents.
	prepare func(t *testing.T, f *fixture, event []byte) []byte
	check   func(t *testing.T, f *fixture, answer []byte)
}

// withID gives an event the id of a seeded execution in place of the one
// the sample events carry.
func withID(event []byte, id string) []byte {
	return []byte(strings.ReplaceAll(string(event), eventExecutionID, id))
}

// withARN gives an event the ARN of a seeded execution in place of the
// event file's.
func withARN(event []byte, e *longrun.Execution) []byte {
	arn := regexp.MustCompile(`arn:aws:states:[^"\\]*:execution:[^"\\]*:` + eventExecutionID)
	if !arn.Match(event) {
		panic("the event names no execution ARN")
	}
	return arn.ReplaceAll(event, []byte(e.ARN))
}

// seededIDs passes ids from prepare to check.
var seededIDs sync.Map

func httpAnswer(t *testing.T, answer []byte, status int) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var res events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(answer, &res); err != nil {
		t.Fatalf("not an API Gateway response: %s", answer)
	}
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, res.Body)
	}
	return res
}

var invocations = map[string]invocation{
	"authorizer": {
		logicalID: "AuthorizerFunction",
		prepare:   func(t *testing.T, f *fixture, event []byte) []byte { return event },
		check: func(t *testing.T, f *fixture, answer []byte) {
			var res events.APIGatewayV2CustomAuthorizerSimpleResponse
			if err := json.Unmarshal(answer, &res); err != nil || !res.IsAuthorized || res.Context["tenant"] != eventTenant {
				t.Errorf("authorizer answered %s, want isAuthorized with tenant %s", answer, eventTenant)
			}
		},
	},
	"start": {
		logicalID: "StartFunction",
		prepare:   func(t *testing.T, f *fixture, event []byte) []byte { return event },
		check: func(t *testing.T, f *fixture, answer []byte) {
			res := httpAnswer(t, answer, http.StatusAccepted)
			id := executionID(t, res.Body)
			if res.Headers["Location"] != "/executions/"+id {
				t.Errorf("Location = %q, want /executions/%s", res.Headers["Location"], id)
			}
			e, err := f.store.GetExecution(context.Background(), eventTenant, id)
			if err != nil || e.Status != longrun.StatusRunning || e.ARN != f.engine.ExecutionARN(id) {
				t.Errorf("stored execution = %+v, %v; want RUNNING on the deployment's state machine", e, err)
			}
		},
	},
	"describe": {
		logicalID: "DescribeFunction",
		prepare: func(t *testing.T, f *fixture, event []byte) []byte {
			id := longrun.NewExecutionID()
			f.seedExecution(t, id, "", false, nil)
			seededIDs.Store(t.Name(), id)
			return withID(event, id)
		},
		check: func(t *testing.T, f *fixture, answer []byte) {
			res := httpAnswer(t, answer, http.StatusOK)
			id, _ := seededIDs.Load(t.Name())
			if !strings.Contains(res.Body, id.(string)) || !strings.Contains(res.Body, `"RUNNING"`) {
				t.Errorf("describe answered %s, want %s RUNNING", res.Body, id)
			}
		},
	},
	// The seed's API shape names executions by ARN: both functions must find
	// the execution from its ARN alone.
	"describe-post": {
		logicalID: "DescribeFunction",
		binary:    "describe",
		prepare: func(t *testing.T, f *fixture, event []byte) []byte {
			e := f.seedExecution(t, longrun.NewExecutionID(), "", false, nil)
			seededIDs.Store(t.Name(), e.ID)
			return withARN(event, e)
		},
		check: func(t *testing.T, f *fixture, answer []byte) {
			res := httpAnswer(t, answer, http.StatusOK)
			id, _ := seededIDs.Load(t.Name())
			if !strings.Contains(res.Body, id.(string)) || !strings.Contains(res.Body, `"RUNNING"`) {
				t.Errorf("describe by ARN answered %s, want %s RUNNING", res.Body, id)
			}
		},
	},
	"stop-post": {
		logicalID: "StopFunction",
		binary:    "stop",
		prepare: func(t *testing.T, f *fixture, event []byte) []byte {
			return withARN(event, f.seedExecution(t, longrun.NewExecutionID(), "", true, nil))
		},
		check: func(t *testing.T, f *fixture, answer []byte) {
			res := httpAnswer(t, answer, http.StatusOK)
			if !strings.Contains(res.Body, `"ABORTED"`) || !strings.Contains(res.Body, `"User.Cancelled"`) {
				t.Errorf("stop by ARN answered %s, want ABORTED with the caller's error", res.Body)
			}
		},
	},
	"stop": {
		logicalID: "StopFunction",
		prepare: func(t *testing.T, f *fixture, event []byte) []byte {
			id := longrun.NewExecutionID()
			f.seedExecution(t, id, "", true, nil)
			return withID(event, id)
		},
		check: func(t *testing.T, f *fixture, answer []byte) {
			res := httpAnswer(t, answer, http.StatusOK)
			if !strings.Contains(res.Body, `"ABORTED"`) {
				t.Errorf("stop answered %s, want ABORTED", res.Body)
			}
		},
	},
	"redeliver": {
		logicalID: "RedeliverFunction",
		prepare: func(t *testing.T, f *fixture, event []byte) []byte {
			id := longrun.NewExecutionID()
			f.seedExecution(t, id, "https://example.com/hook", false, &longrun.Outcome{Status: longrun.StatusFailed, Error: "Ramen.Failed", Cause: "x", StopDate: time.Now()})
			if err := f.store.SaveDelivery(context.Background(), id, longrun.Delivery{EventID: "msg_" + id, Type: longrun.EventFailed, State: longrun.DeliveryFailed}); err != nil {
				t.Fatal(err)
			}
			return withID(event, id)
		},
		check: func(t *testing.T, f *fixture, answer []byte) {
			httpAnswer(t, answer, http.StatusAccepted)
		},
	},
	"worker": {
		logicalID: "WorkerFunction",
		prepare: func(t *testing.T, f *fixture, event []byte) []byte {
			// The record's task token, ids and ARN become those of a live
			// execution; the job's input is the event's own.
			var ev events.SQSEvent
			if err := json.Unmarshal(event, &ev); err != nil || len(ev.Records) == 0 {
				t.Fatalf("not an SQS event: %v", err)
			}
			for i, r := range ev.Records {
				var msg longrun.TaskMessage
				if err := json.Unmarshal([]byte(r.Body), &msg); err != nil {
					t.Fatalf("record %d: not a task message: %v", i, err)
				}
				e := f.seedExecution(t, longrun.NewExecutionID(), "", false, nil)
				var live longrun.TaskMessage
				if err := json.Unmarshal([]byte(f.taskMessage(t, e, string(msg.Input))), &live); err != nil {
					t.Fatal(err)
				}
				live.Input = msg.Input
				body, _ := json.Marshal(live)
				ev.Records[i].Body = string(body)
				seededIDs.Store(t.Name(), e.ID)
			}
			out, _ := json.Marshal(ev)
			return out
		},
		check: func(t *testing.T, f *fixture, answer []byte) {
			var res events.SQSEventResponse
			if err := json.Unmarshal(answer, &res); err != nil || len(res.BatchItemFailures) != 0 {
				t.Errorf("worker answered %s, want no batch item failures", answer)
			}
			// The job's output reached Step Functions, which moved on to
			// Finalize and invoked notify with it.
			id, _ := seededIDs.Load(t.Name())
			req := f.notified(t, id.(string))
			if req.Action != longrun.NotifyFinalize {
				t.Errorf("notify got %+v, want finalize", req)
			}
			if *invokeEvent == "" && (req.Status != longrun.StatusSucceeded || !strings.Contains(string(req.Output), ramen.Message)) {
				t.Errorf("notify got %s %s, want SUCCEEDED with the ramen message", req.Status, req.Output)
			}
		},
	},
	"settle": {
		logicalID: "SettleFunction",
		prepare: func(t *testing.T, f *fixture, event []byte) []byte {
			// A start cut short five minutes ago: the schedule's run starts it.
			seededIDs.Store(t.Name(), f.seedPending(t, time.Now().Add(-5*time.Minute), "", false))
			return event
		},
		check: func(t *testing.T, f *fixture, answer []byte) {
			id, _ := seededIDs.Load(t.Name())
			var res struct{ Found, Started int }
			if err := json.Unmarshal(answer, &res); err != nil || res.Found < 1 || res.Started < 1 {
				t.Errorf("settle answered %s, want the cut start found and started", answer)
			}
			if started, err := f.engine.Started(context.Background(), id.(string)); err != nil || !started {
				t.Errorf("Started(%s) = %v, %v after settle; want its execution", id, started, err)
			}
		},
	},
	"notify": {
		logicalID: "NotifyFunction",
		prepare: func(t *testing.T, f *fixture, event []byte) []byte {
			id := longrun.NewExecutionID()
			f.seedExecution(t, id, "", false, nil)
			seededIDs.Store(t.Name(), id)
			return withID(event, id)
		},
		check: func(t *testing.T, f *fixture, answer []byte) {
			id, _ := seededIDs.Load(t.Name())
			e, err := f.store.GetExecution(context.Background(), "", id.(string))
			if err != nil || !e.Status.Terminal() {
				t.Fatalf("after notify %s, the execution is %+v, %v; want its outcome recorded", answer, e, err)
			}
			if *invokeEvent == "" && (e.Status != longrun.StatusSucceeded || !strings.Contains(string(e.Output), ramen.Message)) {
				t.Errorf("recorded %s %s, want SUCCEEDED with the ramen message", e.Status, e.Output)
			}
		},
	},
}

// TestInvoke runs every function as the bootstrap binary Lambda would run,
// under the Lambda Runtime Interface Emulator, with its sample event from
// events/ and the environment the template gives it, against kumo.
func TestInvoke(t *testing.T) {
	t.Parallel()
	f := newSinkFixture(t)
	for _, fn := range sortedKeys(invocations) {
		if *invokeFn != "" && fn != *invokeFn {
			continue
		}
		t.Run(fn, func(t *testing.T) {
			t.Parallel()
			inv := invocations[fn]
			path := filepath.Join(root, "events", fn+".json")
			if *invokeEvent != "" {
				path = *invokeEvent
			}
			event, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			binary := inv.binary
			if binary == "" {
				binary = fn
			}
			e := f.runEmulator(t, fn, binary, inv.logicalID)
			answer := e.invoke(t, inv.prepare(t, f, event))
			t.Logf("%s answered: %s", fn, answer)
			if *invokeAnswer != "" && *invokeFn == fn {
				if err := os.WriteFile(*invokeAnswer, []byte(answer), 0o600); err != nil {
					t.Error(err)
				}
			}
			inv.check(t, f, answer)
		})
	}
	if *invokeFn != "" {
		if _, ok := invocations[*invokeFn]; !ok {
			t.Fatalf("-fn %s: no such function; have %v", *invokeFn, sortedKeys(invocations))
		}
	}
}

// notifySink stands in for the notify function where a test only needs to
// see what the state machine sends it.
type notifySink struct {
	mu   sync.Mutex
	reqs map[string]chan longrun.NotifyRequest
}

// newSinkFixture is a fixture on kumo, with its integrations served, whose
// state machines send notify to a sink (f.sink).
func newSinkFixture(t *testing.T) *fixture {
	t.Helper()
	k := awstest.Kumo(t)
	k.ServeIntegrations(t)
	sink := newNotifySink()
	notifyFn := k.ServeFunction(t, awstest.UniqueName("notify"), 30*time.Second, lambda.NewHandler(sink.handle))
	f := newFixture(t, stateMachineDefs{deliver: passDefinition}, notifyFn.ARN)
	f.sink = sink
	return f
}

func newNotifySink() *notifySink { return &notifySink{reqs: map[string]chan longrun.NotifyRequest{}} }

func (s *notifySink) ch(id string) chan longrun.NotifyRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.reqs[id]
	if !ok {
		c = make(chan longrun.NotifyRequest, 10)
		s.reqs[id] = c
	}
	return c
}

func (s *notifySink) handle(_ context.Context, req longrun.NotifyRequest) (any, error) {
	select {
	case s.ch(req.ExecutionID) <- req:
	default:
	}
	if req.Action == longrun.NotifyDeliver {
		return longrun.DeliverResult{Done: true}, nil
	}
	return struct{}{}, nil
}

// notified waits for the state machine's notify request about id.
func (f *fixture) notified(t *testing.T, id string) longrun.NotifyRequest {
	t.Helper()
	if f.sink == nil {
		t.Fatal("the fixture has no notify sink")
	}
	select {
	case req := <-f.sink.ch(id):
		return req
	case <-time.After(20 * time.Second):
		if f.engine != nil {
			if d, err := f.emu.SFN().DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(f.engine.ExecutionARN(id))}); err == nil {
				t.Logf("the execution is %s: %v %v", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
			}
		}
		t.Fatalf("notify was not invoked for %s within 20s", id)
		return longrun.NotifyRequest{}
	}
}
