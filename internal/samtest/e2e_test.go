package samtest_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/asl"
	"github.com/longrun/longrun/internal/awsapp"
	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/delivery"
	"github.com/longrun/longrun/internal/sqsqueue"
	"github.com/longrun/longrun/jobs/ramen"
	"github.com/longrun/longrun/webhook"
)

// receiver is a webhook receiver on 127.0.0.1 that verifies every delivery
// with the webhook package, as a customer's would.
type receiver struct {
	t       *testing.T
	secrets []string
	mu      sync.Mutex
	got     map[string]chan webhook.Event // by execution id
	flaked  map[string]bool               // ids whose first delivery to /flaky was refused
	hold    chan struct{}                 // when set, deliveries wait until it is closed
	srv     *httptest.Server
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secrets: []string{secret}, got: map[string]chan webhook.Event{}, flaked: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) ch(id string) chan webhook.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.got[id]
	if !ok {
		c = make(chan webhook.Event, 10)
		r.got[id] = c
	}
	return c
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(r.secrets, req.Header, body, time.Now()); err != nil {
		r.t.Errorf("webhook does not verify: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		r.t.Errorf("webhook body %s: %v", body, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if want := "msg_" + ev.Data.ExecutionID; req.Header.Get(webhook.HeaderID) != want {
		r.t.Errorf("webhook-id %q, want %q", req.Header.Get(webhook.HeaderID), want)
	}
	// /flaky is down for maintenance at the first attempt.
	r.mu.Lock()
	flake := strings.HasSuffix(req.URL.Path, "/flaky") && !r.flaked[ev.Data.ExecutionID]
	if flake {
		r.flaked[ev.Data.ExecutionID] = true
	}
	r.mu.Unlock()
	if flake {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	select {
	case r.ch(ev.Data.ExecutionID) <- ev:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) event(t *testing.T, id string) webhook.Event {
	t.Helper()
	select {
	case ev := <-r.ch(id):
		return ev
	case <-time.After(30 * time.Second):
		t.Fatalf("no webhook for %s within 30s", id)
		return webhook.Event{}
	}
}

// TestEndToEnd runs the AWS path on kumo and on moto: the real
// statemachine/longrun.asl.json executed by the emulator's Step Functions; a
// start through the API handler with the AWS adapters; the real worker
// (internal/worker, jobs/ramen) taking the task message from SQS and
// completing the token through sfnengine; the real notify, invoked by the
// emulator's Lambda integration (kumo: through the Runtime API; moto:
// forwarded by awstest), recording the outcome in DynamoDB and posting a
// signed webhook to a receiver on 127.0.0.1. One job succeeds, one fails,
// one webhook needs the deliver state machine, one execution is stopped.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	awstest.OnEach(t, testEndToEnd)
}

func testEndToEnd(t *testing.T, k awstest.Emulator) {
	k.ServeIntegrations(t)
	ctx := context.Background()

	// notify is served before the deployment exists (the state machines name
	// its ARN), and wired once the deployment does.
	var notifyHandler awsapp.NotifyHandler
	ready := make(chan struct{})
	notifyFn := k.ServeFunction(t, awstest.UniqueName("notify"), 30*time.Second, lambda.NewHandler(
		func(ctx context.Context, payload json.RawMessage) (json.RawMessage, error) {
			<-ready
			return notifyHandler(ctx, payload)
		}))
	f := newFixtureOn(t, k, stateMachineDefs{}, notifyFn.ARN)
	recv := newReceiver(t, f.secret)

	// The webhook policy is the only setting changed from the template's:
	// the receiver is plain http on loopback, which AWS would refuse.
	loopback := delivery.Policy{AllowLoopback: true}
	notifyApp := f.app(t, "NotifyFunction", nil, nil)
	notifyApp.Config.WebhookPolicy = loopback
	var err error
	if notifyHandler, err = notifyApp.Notify(); err != nil {
		t.Fatal(err)
	}
	close(ready)
	// Two kinds, as a user's main registers them: the ramen timer (the
	// default) and echo, with an input schema; start and the worker get the
	// same registry, as awslambda.Main gives it to both.
	kinds := longrun.NewRegistry()
	ramen.Register(kinds, 0)
	kinds.Handle("echo", func(ctx context.Context, input json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
		info, _ := longrun.JobInfoFromContext(ctx)
		return json.Marshal(map[string]any{"echo": input, "kind": info.Kind, "attempt": info.Attempt, "executionId": info.ExecutionID})
	}, longrun.JobOptions{InputSchema: json.RawMessage(`{"type":"object","required":["say"],"properties":{"say":{"type":"string"}}}`)})
	startApp := f.app(t, "StartFunction", nil, nil)
	startApp.Config.WebhookPolicy = loopback
	startApp.Jobs = kinds
	start, err := startApp.Start()
	if err != nil {
		t.Fatal(err)
	}
	describe, err := f.app(t, "DescribeFunction", nil, nil).Describe()
	if err != nil {
		t.Fatal(err)
	}
	workApp := f.app(t, "WorkerFunction", nil, nil)
	workApp.Jobs = kinds
	work, err := workApp.Worker()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name         string
		input        string
		job          string // the kind named in the start; "" for none (ramen runs)
		path         string // of the callback URL
		wantStatus   longrun.Status
		wantAttempts int
		check        func(t *testing.T, e webhook.Event)
	}{
		{
			name: "ramen boils", input: `{"seconds":1}`, path: "/hooks", wantStatus: longrun.StatusSucceeded, wantAttempts: 1,
			check: func(t *testing.T, e webhook.Event) {
				var out struct{ Message string }
				if err := json.Unmarshal(e.Data.Output, &out); err != nil || out.Message != ramen.Message {
					t.Errorf("webhook output %s, want the ramen message", e.Data.Output)
				}
			},
		},
		{
			name: "a named kind runs", input: `{"say":"hello"}`, job: "echo", path: "/hooks", wantStatus: longrun.StatusSucceeded, wantAttempts: 1,
			check: func(t *testing.T, e webhook.Event) {
				var out struct {
					Echo        struct{ Say string }
					Kind        string
					Attempt     int
					ExecutionID string
				}
				if err := json.Unmarshal(e.Data.Output, &out); err != nil || out.Echo.Say != "hello" || out.Kind != "echo" || out.Attempt != 1 || out.ExecutionID != e.Data.ExecutionID {
					t.Errorf("webhook output %s, want the echo kind's output with its JobInfo", e.Data.Output)
				}
			},
		},
		{
			name: "job fails", input: `{"fail":"out of water"}`, path: "/hooks", wantStatus: longrun.StatusFailed, wantAttempts: 1,
			check: func(t *testing.T, e webhook.Event) {
				if e.Data.Error != ramen.ErrNameFailed || e.Data.Cause != "out of water" {
					t.Errorf("webhook error %q cause %q, want %s: out of water", e.Data.Error, e.Data.Cause, ramen.ErrNameFailed)
				}
			},
		},
		{
			// The first attempt gets 503: notify starts the deliver state
			// machine, which waits until notify's retryAt (the schedule's
			// 5 s plus jitter) and has notify try again.
			name: "receiver down at first", input: `{"seconds":0}`, path: "/flaky", wantStatus: longrun.StatusSucceeded, wantAttempts: 2,
			check: func(t *testing.T, e webhook.Event) {},
		},
	}
	// One at a time: the worker below takes whatever is on the jobs queue.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := httpEvent(t, "start.json", "", func(ev *events.APIGatewayV2HTTPRequest) {
				ev.Body = `{"input":` + tt.input + `,"callbackUrl":"` + recv.srv.URL + tt.path + `"`
				if tt.job != "" {
					ev.Body += `,"job":"` + tt.job + `"`
				}
				ev.Body += `}`
				ev.Headers["content-length"] = ""
			})
			res, err := start(ctx, ev)
			wantStatus(t, "start", res, err, http.StatusAccepted)
			id := executionID(t, res.Body)

			// What the SQS event source mapping does: receive, invoke the
			// worker with the record, delete it unless reported as failed.
			msg := f.receiveTask(t, id)
			out, err := work(ctx, events.SQSEvent{Records: []events.SQSMessage{{
				MessageId: msg.ID, ReceiptHandle: msg.Receipt, Body: msg.Body, EventSource: "aws:sqs",
				EventSourceARN: f.jobs.ARN, AWSRegion: awstest.Region,
			}}})
			if err != nil || len(out.BatchItemFailures) != 0 {
				t.Fatalf("worker = %+v, %v; want the record done", out, err)
			}
			if err := sqsqueue.New(k.SQS(), f.jobs.URL).Delete(ctx, msg.Receipt); err != nil {
				t.Fatal(err)
			}

			wh := recv.event(t, id)
			wantJob := cmp.Or(tt.job, ramen.Kind)
			if wh.Type != longrun.EventTypeFor(tt.wantStatus) || wh.Data.Status != tt.wantStatus || wh.Data.Job != wantJob {
				t.Errorf("webhook %s %s job %q, want %s of kind %s", wh.Type, wh.Data.Status, wh.Data.Job, tt.wantStatus, wantJob)
			}
			tt.check(t, wh)

			// The record says the same through describe. notify records the
			// attempt after making it, so the receiver can be a moment ahead.
			var rec struct {
				Status  longrun.Status
				Job     string
				Webhook struct {
					State    string
					Attempts []struct{ StatusCode int }
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				res, err = describe(ctx, httpEvent(t, "describe.json", id, nil))
				wantStatus(t, "describe", res, err, http.StatusOK)
				if err := json.Unmarshal([]byte(res.Body), &rec); err != nil {
					t.Fatal(err)
				}
				if rec.Webhook.State == string(longrun.DeliveryDelivered) || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if rec.Status != tt.wantStatus || rec.Job != wantJob || rec.Webhook.State != string(longrun.DeliveryDelivered) || len(rec.Webhook.Attempts) != tt.wantAttempts {
				t.Errorf("describe = %s, want %s with the webhook delivered in %d attempts", res.Body, tt.wantStatus, tt.wantAttempts)
			}

			// Step Functions ends the execution to match the job.
			sfnOut := f.ended(t, f.engine.ExecutionARN(id))
			switch tt.wantStatus {
			case longrun.StatusSucceeded:
				if sfnOut.Status != sfntypes.ExecutionStatusSucceeded {
					t.Errorf("execution ended %s, want SUCCEEDED", sfnOut.Status)
				}
				// Finalize's OutputPath $.result: the execution's output is the job's.
				// Compacted: moto writes JSON with spaces, kumo without.
				var out bytes.Buffer
				_ = json.Compact(&out, []byte(aws.ToString(sfnOut.Output)))
				if want := map[string]string{"": ramen.Message, "echo": `"kind":"echo"`}[tt.job]; !strings.Contains(out.String(), want) {
					t.Errorf("execution output %s, want the job's output", aws.ToString(sfnOut.Output))
				}
			case longrun.StatusFailed:
				if sfnOut.Status != sfntypes.ExecutionStatusFailed {
					t.Errorf("execution ended %s, want FAILED", sfnOut.Status)
				}
				// What AWS does, shown by internal/asl (which follows the
				// language spec) on the same definition and outcome.
				errName, cause := aslFailure(t, f.substituted(t, "LongrunStateMachine"), ramen.ErrNameFailed, "out of water")
				if k.Name() == "kumo" {
					// kumo ignores the Fail state's ErrorPath/CausePath
					// (docs/emulators.md).
					errName, cause = "", ""
				}
				if got, gotCause := aws.ToString(sfnOut.Error), aws.ToString(sfnOut.Cause); got != errName || gotCause != cause {
					t.Errorf("execution failed with %q %q, want %q %q", got, gotCause, errName, cause)
				}
			}
		})
	}

	// The start function refuses an unknown kind and an input that breaks
	// the kind's schema with a 400 that says why, before anything runs.
	t.Run("refused kinds and inputs", func(t *testing.T) {
		for _, tc := range []struct{ body, want string }{
			{`{"input":{},"job":"transcode"}`, `known kinds: \"ramen\", \"echo\"`},
			{`{"input":{"say":7},"job":"echo"}`, `"pointer":"/input/say","detail":"got number, want string"`},
		} {
			res, err := start(ctx, httpEvent(t, "start.json", "", func(ev *events.APIGatewayV2HTTPRequest) {
				ev.Body = tc.body
				ev.Headers["content-length"] = ""
			}))
			wantStatus(t, "start", res, err, http.StatusBadRequest)
			if !strings.Contains(res.Body, tc.want) {
				t.Errorf("start %s = %s, want it to say %s", tc.body, res.Body, tc.want)
			}
		}
	})

	// A stop: StopFunction's handler stops the execution and records
	// ABORTED; on AWS the EventBridge rule then invokes notify with the
	// status change, which sends execution.aborted. kumo has no EventBridge,
	// so the event is made from kumo's own DescribeExecution of the stopped
	// execution, in the envelope of events/notify-status-change.json.
	t.Run("stopped", func(t *testing.T) {
		stop, err := f.app(t, "StopFunction", nil, nil).Stop()
		if err != nil {
			t.Fatal(err)
		}
		ev := httpEvent(t, "start.json", "", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Body = `{"input":{"seconds":600},"callbackUrl":"` + recv.srv.URL + `/hooks"}`
		})
		res, err := start(ctx, ev)
		wantStatus(t, "start", res, err, http.StatusAccepted)
		id := executionID(t, res.Body)
		f.receiveTask(t, id) // the Work state is waiting on its token
		res, err = stop(ctx, httpEvent(t, "stop.json", id, nil))
		wantStatus(t, "stop", res, err, http.StatusOK)

		sfnOut := f.ended(t, f.engine.ExecutionARN(id))
		if sfnOut.Status != sfntypes.ExecutionStatusAborted {
			t.Fatalf("execution ended %s, want ABORTED", sfnOut.Status)
		}
		var change map[string]any
		loadEvent(t, "notify-status-change.json", &change)
		detail := change["detail"].(map[string]any)
		detail["executionArn"] = aws.ToString(sfnOut.ExecutionArn)
		detail["stateMachineArn"] = aws.ToString(sfnOut.StateMachineArn)
		detail["name"] = aws.ToString(sfnOut.Name)
		detail["status"] = string(sfnOut.Status)
		detail["startDate"] = sfnOut.StartDate.UnixMilli()
		detail["stopDate"] = sfnOut.StopDate.UnixMilli()
		detail["error"] = sfnOut.Error
		detail["cause"] = sfnOut.Cause
		change["resources"] = []string{aws.ToString(sfnOut.ExecutionArn)}
		payload, _ := json.Marshal(change)
		if _, err := notifyHandler(ctx, payload); err != nil {
			t.Fatalf("notify on the status change: %v", err)
		}
		wh := recv.event(t, id)
		if wh.Type != longrun.EventAborted || wh.Data.Status != longrun.StatusAborted || wh.Data.Error != longrun.ErrNameStopped {
			t.Errorf("webhook %s %s %q, want %s ABORTED %s", wh.Type, wh.Data.Status, wh.Data.Error, longrun.EventAborted, longrun.ErrNameStopped)
		}
	})
}

// receiveTask takes the task message of execution id from the jobs queue.
func (f *fixture) receiveTask(t *testing.T, id string) longrun.Message {
	t.Helper()
	q := sqsqueue.New(f.emu.SQS(), f.jobs.URL)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		msgs, err := q.Receive(context.Background(), 1, time.Second, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var tm longrun.TaskMessage
			if json.Unmarshal([]byte(m.Body), &tm) == nil && tm.ExecutionID == id {
				return m
			}
			// A stopped execution's task, which nobody works.
			_ = q.Delete(context.Background(), m.Receipt)
		}
	}
	t.Fatalf("no task message for %s within 20s", id)
	return longrun.Message{}
}

// ended waits until the execution is no longer RUNNING.
func (f *fixture) ended(t *testing.T, arn string) *sfn.DescribeExecutionOutput {
	t.Helper()
	client := f.emu.SFN()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := client.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != sfntypes.ExecutionStatusRunning {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still RUNNING after 30s", arn)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// skipWaits is real time whose waits end at once: aslFailure wants the
// execution's outcome, not its retry backoffs.
type skipWaits struct{ longrun.SystemClock }

func (skipWaits) Until(time.Time) (<-chan struct{}, func()) {
	done := make(chan struct{})
	close(done)
	return done, func() {}
}

// aslFailure runs definition with internal/asl, the Work task failing with
// errName and cause and notify answering, and returns the execution's error.
func aslFailure(t *testing.T, definition, errName, cause string) (string, string) {
	t.Helper()
	m, err := asl.Parse([]byte(definition))
	if err != nil {
		t.Fatal(err)
	}
	res, err := asl.Run(context.Background(), m, json.RawMessage(`{"executionId":"x","executionArn":"arn","input":{},"limits":{"timeoutSeconds":60,"heartbeatSeconds":30}}`), asl.RunOptions{
		Invoke: func(_ context.Context, task *asl.Task, _ string) (json.RawMessage, error) {
			if task.State == "Work" {
				return nil, &asl.TaskError{Name: errName, Cause: cause}
			}
			return json.RawMessage(`{"Payload":{}}`), nil
		},
		Clock: skipWaits{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != asl.StatusFailed {
		t.Fatalf("by the spec the execution ends %s, want FAILED", res.Status)
	}
	return res.Error, res.Cause
}
