package samtest_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/auth"
	"github.com/longrun/longrun/internal/awsapp"
	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/delivery"
	"github.com/longrun/longrun/internal/dynamostore"
	"github.com/longrun/longrun/internal/sfnengine"
	"github.com/longrun/longrun/internal/sqsqueue"
	"github.com/longrun/longrun/webhook"
)

// The ids and key the sample events in events/ use.
const (
	eventTenant      = "tenant-demo"
	eventExecutionID = "0193f3a0-8c1e-7d2a-9b4f-2c6e8a1d5f00"
)

// eventKey is the API key of events/authorizer.json.
func eventKey(t *testing.T) string {
	t.Helper()
	var ev events.APIGatewayV2CustomAuthorizerV2Request
	loadEvent(t, "authorizer.json", &ev)
	return strings.TrimPrefix(ev.Headers["authorization"], "Bearer ")
}

func loadEvent(t *testing.T, name string, v any) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("events/%s: %v", name, err)
		}
	}
	return data
}

// notExercised are the actions a role must allow that no request of the
// function's code makes, each with the reason. Everything else a role
// allows must be seen in the recording.
var notExercised = map[string]map[string]string{
	"WorkerFunction": {
		"sqs:ReceiveMessage":       "the SQS event source mapping polls the queue with the function's role",
		"sqs:DeleteMessage":        "the event source mapping deletes the records the worker does not report as failed",
		"sqs:GetQueueAttributes":   "the event source mapping reads the queue's attributes",
		"logs:CreateLogStream":     "Lambda writes the function's logs with its role (an explicit role gets no AWSLambdaBasicExecutionRole)",
		"logs:PutLogEvents":        "Lambda writes the function's logs with its role",
		"xray:PutTraceSegments":    "Tracing: Active sends segments with the function's role",
		"xray:PutTelemetryRecords": "Tracing: Active",
	},
	"NotifyFunction": {
		"states:DescribeExecution": "only when a delivery round's name is taken already: to tell a running loop from an ended one (sfnengine tests it on kumo)",
	},
	"RedeliverFunction": {
		"states:DescribeExecution": "only when a delivery round's name is taken already: to tell a running loop from an ended one (sfnengine tests it on kumo)",
	},
	"SettleFunction": {
		"states:DescribeExecution": "on the deliver state machine only when a delivery round's name is taken already (sfnengine tests it on kumo); on the longrun one the scenario calls it",
	},
}

// fixture is a deployment with the events' tenant and key, and clients that
// are not recorded for seeding.
type fixture struct {
	*deployment
	store  *dynamostore.Store
	engine *sfnengine.Engine
	secret string
	sink   *notifySink // what the state machines send notify, when it is a sink
}

func newFixture(t *testing.T, defs stateMachineDefs, notifyARN string) *fixture {
	t.Helper()
	return newFixtureOn(t, awstest.Kumo(t), defs, notifyARN)
}

// newFixtureOn is newFixture on the emulator emu.
func newFixtureOn(t *testing.T, emu awstest.Emulator, defs stateMachineDefs, notifyARN string) *fixture {
	t.Helper()
	d := deployOn(t, emu, defs, notifyARN)
	f := &fixture{
		deployment: d,
		store:      dynamostore.New(d.emu.DynamoDB(), dynamostore.Config{TableName: d.table}),
		engine:     sfnengine.New(d.emu.SFN(), sfnengine.Config{StateMachineARN: d.longrun, DeliverStateMachineARN: d.deliver}),
		secret:     webhook.NewSecret(),
	}
	ctx := context.Background()
	if err := f.store.PutTenant(ctx, &longrun.Tenant{ID: eventTenant, Secrets: []longrun.WebhookSecret{{Value: f.secret, CreatedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutAPIKey(ctx, auth.HashKey(eventKey(t)), eventTenant); err != nil {
		t.Fatal(err)
	}
	return f
}

// app builds the function's handlers as its main does, from the
// environment the template gives it (plus overrides), with recorded clients.
// appToDownReceiver is f.app for function, allowed to post webhooks to
// loopback (the one difference from AWS), and a receiver there that is down
// (503) until the test ends: the attempt fails and the next is scheduled.
func (f *fixture) appToDownReceiver(t *testing.T, function string, rec *recorder) (*awsapp.App, *httptest.Server) {
	t.Helper()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(receiver.Close)
	app := f.app(t, function, rec, nil)
	app.Config.WebhookPolicy = delivery.Policy{AllowLoopback: true}
	return app, receiver
}

func (f *fixture) app(t *testing.T, function string, rec *recorder, overrides map[string]string) *awsapp.App {
	t.Helper()
	env := f.env(t, function)
	for k, v := range overrides {
		env[k] = v
	}
	cfg, err := awsapp.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("%s: %v", function, err)
	}
	awsCfg := f.emu.Config()
	if rec != nil {
		awsCfg = rec.config(awsCfg)
	}
	return awsapp.New(cfg, awsCfg, slog.New(slog.DiscardHandler))
}

func (f *fixture) recorder() *recorder {
	return newRecorder(func(url string) string {
		switch url {
		case f.jobs.URL:
			return f.jobs.ARN
		case f.dlq.URL:
			return f.dlq.ARN
		case f.long.URL:
			return f.long.ARN
		case f.longDLQ.URL:
			return f.longDLQ.ARN
		}
		return "unknown queue " + url
	}, f.longrun)
}

// seedExecution stores an execution of the events' tenant, RUNNING unless
// outcome is given; with orchestrate it is also started on the longrun
// state machine.
func (f *fixture) seedExecution(t *testing.T, id, callback string, orchestrate bool, outcome *longrun.Outcome) *longrun.Execution {
	t.Helper()
	return f.seedAt(t, id, time.Now().UTC(), callback, orchestrate, outcome)
}

// seedPending stores a RUNNING execution of the events' tenant started at
// start, as a start cut short leaves it: marked start-pending; with
// orchestrate its state machine did start.
func (f *fixture) seedPending(t *testing.T, start time.Time, callback string, orchestrate bool) string {
	t.Helper()
	id := longrun.NewExecutionID()
	f.seedAt(t, id, start, callback, orchestrate, nil)
	return id
}

// seedAt is seedExecution of an execution started at start.
func (f *fixture) seedAt(t *testing.T, id string, start time.Time, callback string, orchestrate bool, outcome *longrun.Outcome) *longrun.Execution {
	t.Helper()
	ctx := context.Background()
	e := &longrun.Execution{
		ID: id, ARN: f.engine.ExecutionARN(id), Tenant: eventTenant, Status: longrun.StatusRunning,
		Input: json.RawMessage(`{"seconds":1}`), CallbackURL: callback, StartDate: start,
	}
	if _, _, err := f.store.CreateExecution(ctx, e); err != nil {
		t.Fatal(err)
	}
	if orchestrate {
		err := f.engine.StartExecution(ctx, longrun.StateInput{ExecutionID: id, ExecutionARN: e.ARN, Input: e.Input,
			Limits: longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if outcome != nil {
		if _, _, err := f.store.FinishExecution(ctx, id, *outcome); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// httpEvent is events/<name> with its path's id replaced by id.
func httpEvent(t *testing.T, name, id string, mutate func(*events.APIGatewayV2HTTPRequest)) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw := strings.ReplaceAll(string(loadEvent(t, name, nil)), eventExecutionID, id)
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&ev)
	}
	return ev
}

func wantStatus(t *testing.T, what string, res events.APIGatewayV2HTTPResponse, err error, status int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if res.StatusCode != status {
		t.Fatalf("%s: status %d, want %d: %s", what, res.StatusCode, status, res.Body)
	}
}

// scenarios run each function's handler through its paths: every call its
// code can make on AWS, short of failures of AWS itself.
var scenarios = map[string]func(t *testing.T, f *fixture, rec *recorder){
	"AuthorizerFunction": func(t *testing.T, f *fixture, rec *recorder) {
		h, err := f.app(t, "AuthorizerFunction", rec, nil).Authorizer()
		if err != nil {
			t.Fatal(err)
		}
		var ev events.APIGatewayV2CustomAuthorizerV2Request
		loadEvent(t, "authorizer.json", &ev)
		res, err := h(context.Background(), ev)
		if err != nil || !res.IsAuthorized || res.Context[auth.TenantContextKey] != eventTenant {
			t.Fatalf("authorize the events' key = %+v, %v; want authorized for %s", res, err, eventTenant)
		}
		ev.Headers["authorization"] = "Bearer lr_unknown"
		if res, err := h(context.Background(), ev); err != nil || res.IsAuthorized {
			t.Fatalf("authorize an unknown key = %+v, %v; want denied", res, err)
		}
	},
	"StartFunction": func(t *testing.T, f *fixture, rec *recorder) {
		h, err := f.app(t, "StartFunction", rec, nil).Start()
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		res, err := h(ctx, httpEvent(t, "start.json", "", nil))
		wantStatus(t, "start", res, err, http.StatusAccepted)
		withKey := func(ev *events.APIGatewayV2HTTPRequest) { ev.Headers["idempotency-key"] = "order-42" }
		res, err = h(ctx, httpEvent(t, "start.json", "", withKey))
		wantStatus(t, "start with an Idempotency-Key", res, err, http.StatusAccepted)
		replay, err := h(ctx, httpEvent(t, "start.json", "", withKey))
		wantStatus(t, "replayed start", replay, err, http.StatusAccepted)
		if executionID(t, replay.Body) != executionID(t, res.Body) {
			t.Errorf("replay answered %s, want the original execution %s", replay.Body, res.Body)
		}
		// A start whose StartExecution fails deletes its record. The ARN is
		// the only thing changed, and its StartExecution is not recorded:
		// the role is for the real state machine.
		broken := newRecorder(rec.queueARN, rec.taskTokens)
		hb, err := f.app(t, "StartFunction", broken, map[string]string{awsapp.EnvStateMachineARN: f.longrun + "-missing"}).Start()
		if err != nil {
			t.Fatal(err)
		}
		res, err = hb(ctx, httpEvent(t, "start.json", "", nil))
		if err != nil || res.StatusCode/100 != 5 {
			t.Fatalf("start on a missing state machine = %d %v, want a 5xx", res.StatusCode, err)
		}
		for _, c := range broken.recorded() {
			if c.Action != "states:StartExecution" {
				rec.add(c)
			}
		}
	},
	"DescribeFunction": func(t *testing.T, f *fixture, rec *recorder) {
		h, err := f.app(t, "DescribeFunction", rec, nil).Describe()
		if err != nil {
			t.Fatal(err)
		}
		id := longrun.NewExecutionID()
		f.seedExecution(t, id, "", false, nil)
		ctx := context.Background()
		// describe-post.json names the execution by ARN: the seeded one's.
		seededARN := func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Body = regexp.MustCompile(`arn:aws:states:[^"]*:execution:[^"]*:`+id).ReplaceAllString(ev.Body, f.engine.ExecutionARN(id))
		}
		for _, name := range []string{"describe.json", "describe-post.json", "list.json"} {
			res, err := h(ctx, httpEvent(t, name, id, seededARN))
			wantStatus(t, name, res, err, http.StatusOK)
			if !strings.Contains(res.Body, id) {
				t.Errorf("%s: the answer does not show %s: %s", name, id, res.Body)
			}
		}
		res, err := h(ctx, httpEvent(t, "describe.json", longrun.NewExecutionID(), nil))
		wantStatus(t, "describe an unknown id", res, err, http.StatusNotFound)
	},
	"StopFunction": func(t *testing.T, f *fixture, rec *recorder) {
		h, err := f.app(t, "StopFunction", rec, nil).Stop()
		if err != nil {
			t.Fatal(err)
		}
		id := longrun.NewExecutionID()
		f.seedExecution(t, id, "", true, nil)
		res, err := h(context.Background(), httpEvent(t, "stop.json", id, nil))
		wantStatus(t, "stop", res, err, http.StatusOK)
		if !strings.Contains(res.Body, `"ABORTED"`) {
			t.Errorf("stop answered %s, want the execution ABORTED", res.Body)
		}
		res, err = h(context.Background(), httpEvent(t, "stop.json", id, nil))
		wantStatus(t, "stop again", res, err, http.StatusConflict)
	},
	"RedeliverFunction": func(t *testing.T, f *fixture, rec *recorder) {
		h, err := f.app(t, "RedeliverFunction", rec, nil).Redeliver()
		if err != nil {
			t.Fatal(err)
		}
		id := longrun.NewExecutionID()
		f.seedExecution(t, id, "https://example.com/hook", false, &longrun.Outcome{Status: longrun.StatusSucceeded, Output: json.RawMessage(`{}`), StopDate: time.Now()})
		err = f.store.SaveDelivery(context.Background(), id, longrun.Delivery{EventID: "msg_" + id, Type: longrun.EventSucceeded, State: longrun.DeliveryFailed})
		if err != nil {
			t.Fatal(err)
		}
		res, err := h(context.Background(), httpEvent(t, "redeliver.json", id, nil))
		wantStatus(t, "redeliver", res, err, http.StatusAccepted)
	},
	"WorkerFunction": func(t *testing.T, f *fixture, rec *recorder) {
		// Heartbeats every second (a third of 3 s), so a 2 s job sends some.
		h, err := f.app(t, "WorkerFunction", rec, map[string]string{awsapp.EnvJobHeartbeatSeconds: "3"}).Worker()
		if err != nil {
			t.Fatal(err)
		}
		var ev events.SQSEvent
		loadEvent(t, "worker.json", &ev)
		for _, input := range []string{`{"seconds":2}`, `{"fail":"out of water"}`} {
			id := longrun.NewExecutionID()
			e := f.seedExecution(t, id, "", false, nil)
			ev.Records[0].Body = f.taskMessage(t, e, input)
			res, err := h(context.Background(), ev)
			if err != nil || len(res.BatchItemFailures) != 0 {
				t.Fatalf("worker on %s = %+v, %v; want the record done", input, res, err)
			}
		}
		// Progress after the record already ended (a stop recorded first):
		// the failed condition is answered by reading the record.
		id := longrun.NewExecutionID()
		e := f.seedExecution(t, id, "", false, nil)
		ev.Records[0].Body = f.taskMessage(t, e, `{"seconds":1}`)
		if _, _, err := f.store.FinishExecution(context.Background(), id, longrun.Outcome{Status: longrun.StatusAborted, StopDate: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if res, err := h(context.Background(), ev); err != nil || len(res.BatchItemFailures) != 0 {
			t.Fatalf("worker after the record ended = %+v, %v; want the record done", res, err)
		}
	},
	"SettleFunction": func(t *testing.T, f *fixture, rec *recorder) {
		// Three starts cut short, as a start Lambda killed between the
		// record and StartExecution leaves them: one whose execution did
		// start (only the marker's clear was lost), one to start, and one
		// past the time a start is retried, to fail with a webhook to a
		// receiver that is down (so the deliver state machine is started).
		app, receiver := f.appToDownReceiver(t, "SettleFunction", rec)
		h, err := app.Settle()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		running := f.seedPending(t, now.Add(-5*time.Minute), "", true)
		cut := f.seedPending(t, now.Add(-5*time.Minute), "", false)
		stale := f.seedPending(t, now.Add(-25*time.Hour), receiver.URL+"/hook", false)
		if _, err := h(context.Background(), json.RawMessage(loadEvent(t, "settle.json", nil))); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]longrun.Status{running: longrun.StatusRunning, cut: longrun.StatusRunning, stale: longrun.StatusFailed} {
			e, err := f.store.GetExecution(context.Background(), "", id)
			if err != nil || e.Status != want {
				t.Errorf("after settle, %s is %+v, %v; want %s", id, e, err, want)
			}
		}
	},
	"NotifyFunction": func(t *testing.T, f *fixture, rec *recorder) {
		// A receiver on loopback that is down for maintenance: the attempt
		// fails, so notify schedules the next one on the deliver state
		// machine. Only the webhook policy differs from AWS, to reach it.
		app, receiver := f.appToDownReceiver(t, "NotifyFunction", rec)
		h, err := app.Notify()
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		id := longrun.NewExecutionID()
		f.seedExecution(t, id, receiver.URL+"/hook", false, nil)
		for _, name := range []string{"notify.json", "notify-deliver.json"} {
			payload := strings.ReplaceAll(string(loadEvent(t, name, nil)), eventExecutionID, id)
			if _, err := h(ctx, json.RawMessage(payload)); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		other := longrun.NewExecutionID()
		f.seedExecution(t, other, "", false, nil)
		payload := strings.ReplaceAll(string(loadEvent(t, "notify-status-change.json", nil)), eventExecutionID, other)
		if _, err := h(ctx, json.RawMessage(payload)); err != nil {
			t.Fatalf("status change: %v", err)
		}
		for want, eid := range map[longrun.Status]string{longrun.StatusSucceeded: id, longrun.StatusTimedOut: other} {
			e, err := f.store.GetExecution(ctx, "", eid)
			if err != nil || e.Status != want {
				t.Errorf("after notify, %s is %+v, %v; want %s", eid, e, err, want)
			}
		}
	},
}

func executionID(t *testing.T, body string) string {
	t.Helper()
	var v struct{ ExecutionID string }
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.ExecutionID == "" {
		t.Fatalf("no executionId in %s (%v)", body, err)
	}
	return v.ExecutionID
}

// taskMessage starts a real execution of the longrun state machine for e
// and returns the task message its Work state puts on the jobs queue, with
// input as the job's input.
func (f *fixture) taskMessage(t *testing.T, e *longrun.Execution, input string) string {
	t.Helper()
	ctx := context.Background()
	err := f.engine.StartExecution(ctx, longrun.StateInput{ExecutionID: e.ID, ExecutionARN: e.ARN, Input: json.RawMessage(input),
		Limits: longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30}})
	if err != nil {
		t.Fatal(err)
	}
	q := sqsqueue.New(f.kumo.SQS(), f.jobs.URL)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		msgs, err := q.Receive(ctx, 1, time.Second, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			// Other tests' executions share the queue; nobody works them.
			_ = q.Delete(ctx, m.Receipt)
			var tm longrun.TaskMessage
			if json.Unmarshal([]byte(m.Body), &tm) == nil && tm.ExecutionID == e.ID {
				return m.Body
			}
		}
	}
	t.Fatalf("no task message for %s", e.ID)
	return ""
}

// grants evaluates the role statements of id for the deployment.
func (f *fixture) grants(t *testing.T, id string) []grant {
	t.Helper()
	sts, err := f.tpl.Statements(id)
	if err != nil {
		t.Fatal(err)
	}
	var out []grant
	for _, st := range sts {
		if st.Effect != "Allow" {
			t.Errorf("%s: statement %q: Effect %q, want Allow (no Deny is needed)", id, st.Sid, st.Effect)
		}
		for _, r := range st.Resource {
			res, err := f.tpl.String(r, f.resolve)
			if err != nil {
				t.Fatalf("%s: statement %q: %v", id, st.Sid, err)
			}
			for _, a := range st.Action {
				if strings.Contains(a, "*") {
					t.Errorf("%s: statement %q: wildcard action %s", id, st.Sid, a)
				}
				out = append(out, grant{Sid: st.Sid, Action: a, Resource: res})
			}
		}
	}
	return out
}

// noResourceLevel are the actions AWS authorizes only on "*".
var noResourceLevel = []string{
	"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
	"logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
	"logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
}

// compare fails t unless the grants allow every call and every grant is
// used by a call or listed in extra.
func compare(t *testing.T, id string, grants []grant, calls []call, extra map[string]string) {
	t.Helper()
	for _, c := range calls {
		if !slices.ContainsFunc(grants, func(g grant) bool { return g.allows(c) }) {
			t.Errorf("%s's role does not allow %s, which its code calls", id, c)
		}
	}
	for _, g := range grants {
		if g.Resource == "*" && !slices.Contains(noResourceLevel, g.Action) {
			t.Errorf("%s's role allows %s on every resource (statement %q)", id, g.Action, g.Sid)
		}
		used := slices.ContainsFunc(calls, func(c call) bool { return g.allows(c) })
		if _, ok := extra[g.Action]; !used && !ok {
			t.Errorf("%s's role allows %s on %s (statement %q), which its code never calls", id, g.Action, g.Resource, g.Sid)
		}
	}
	for action := range extra {
		if !slices.ContainsFunc(grants, func(g grant) bool { return g.Action == action }) {
			t.Errorf("%s: %s is listed as needed without a call, but the role does not allow it", id, action)
		}
	}
}

// Each function's role allows exactly the AWS calls its code makes: the
// handlers run against kumo with the template's environment and a recorder
// on their SDK clients, and the recording is compared with the template's
// statements both ways.
func TestFunctionRolesAreExact(t *testing.T) {
	t.Parallel()
	awstest.Kumo(t).ServeIntegrations(t) // the worker's scenario runs the real Work state
	f := newFixture(t, stateMachineDefs{deliver: passDefinition}, "")
	for _, id := range sortedKeys(functionDirs) {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			scenario, ok := scenarios[id]
			if !ok {
				t.Fatalf("no scenario for %s", id)
			}
			rec := f.recorder()
			scenario(t, f, rec)
			calls := rec.recorded()
			t.Logf("%s calls: %v", id, calls)
			compare(t, id, f.grants(t, id), calls, notExercised[id])
		})
	}
}

// The state machines' roles allow exactly what their Task states call.
func TestStateMachineRolesAreExact(t *testing.T) {
	t.Parallel()
	f := &fixture{deployment: fakeDeployment(t)}
	for _, id := range []string{"LongrunStateMachine", "DeliverStateMachine"} {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			def := []byte(f.definition(t, id, ""))
			var parsed struct {
				States map[string]struct {
					Type       string
					Resource   string
					Parameters map[string]any
				}
			}
			if err := json.Unmarshal(def, &parsed); err != nil {
				t.Fatal(err)
			}
			var calls []call
			for name, s := range parsed.States {
				if s.Type != "Task" {
					continue
				}
				switch strings.TrimSuffix(s.Resource, ".waitForTaskToken") {
				case "arn:aws:states:::sqs:sendMessage":
					if _, dynamic := s.Parameters["QueueUrl.$"]; dynamic {
						// The queue comes from the state input: the start
						// function routes to the jobs queue or the long-jobs
						// queue (TestStartRoutesLongKinds shows which).
						for _, url := range []string{f.jobs.URL, f.long.URL} {
							calls = append(calls, call{"sqs:SendMessage", f.recorder().queueARN(url)})
						}
						continue
					}
					calls = append(calls, call{"sqs:SendMessage", f.recorder().queueARN(s.Parameters["QueueUrl"].(string))})
				case "arn:aws:states:::lambda:invoke":
					calls = append(calls, call{"lambda:InvokeFunction", s.Parameters["FunctionName"].(string)})
				default:
					t.Errorf("state %s: integration %s has no IAM mapping in this test", name, s.Resource)
				}
			}
			extra := map[string]string{}
			for _, a := range noResourceLevel {
				extra[a] = "Logging and Tracing of the state machine"
			}
			compare(t, id, f.grants(t, id), calls, extra)
		})
	}
}
