package samtest_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go/middleware"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awsapp"
	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/delivery"
	"github.com/longrun/longrun/internal/fakeclock"
	"github.com/longrun/longrun/internal/settle"
	"github.com/longrun/longrun/internal/sqsqueue"
)

// awsPath is a deployment on one emulator with the real notify served as
// its Lambda function (for the state machines), a webhook receiver, and the
// handlers the tests below call.
type awsPath struct {
	f      *fixture
	recv   *receiver
	notify awsapp.NotifyHandler
	ctx    context.Context
}

func newAWSPath(t *testing.T, k awstest.Emulator) *awsPath {
	k.ServeIntegrations(t)
	var notifyHandler awsapp.NotifyHandler
	ready := make(chan struct{})
	notifyFn := k.ServeFunction(t, awstest.UniqueName("notify"), 30*time.Second, lambda.NewHandler(
		func(ctx context.Context, payload json.RawMessage) (json.RawMessage, error) {
			<-ready
			return notifyHandler(ctx, payload)
		}))
	f := newFixtureOn(t, k, stateMachineDefs{}, notifyFn.ARN)
	p := &awsPath{f: f, recv: newReceiver(t, f.secret), ctx: context.Background()}
	notifyApp := p.app(t, "NotifyFunction", nil)
	var err error
	if notifyHandler, err = notifyApp.Notify(); err != nil {
		t.Fatal(err)
	}
	p.notify = notifyHandler
	close(ready)
	return p
}

// app is f.app with the receiver's loopback allowed (the only setting
// changed from the template's) and extra SDK middleware.
func (p *awsPath) app(t *testing.T, function string, apiOptions []func(*middleware.Stack) error) *awsapp.App {
	t.Helper()
	env := p.f.env(t, function)
	cfg, err := awsapp.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("%s: %v", function, err)
	}
	cfg.WebhookPolicy = delivery.Policy{AllowLoopback: true}
	awsCfg := p.f.emu.Config()
	awsCfg.APIOptions = append(awsCfg.APIOptions[:len(awsCfg.APIOptions):len(awsCfg.APIOptions)], apiOptions...)
	return awsapp.New(cfg, awsCfg, slog.New(slog.DiscardHandler))
}

// killedBeforeStartExecution is what a start Lambda killed between its two
// steps does: the record is written, and the process is gone before
// StartExecution (the panic skips everything after it; the API's recovery
// answers 500 in place of the dead Lambda's missing answer).
func killedBeforeStartExecution(stack *middleware.Stack) error {
	return stack.Serialize.Add(middleware.SerializeMiddlewareFunc("samtest.kill",
		func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
			if awsmiddleware.GetServiceID(ctx) == "SFN" && awsmiddleware.GetOperationName(ctx) == "StartExecution" {
				panic("samtest: the start Lambda is killed between the record and StartExecution")
			}
			return next.HandleSerialize(ctx, in)
		}), middleware.Before)
}

// cutStart starts an execution through a start function that is killed
// before StartExecution, and checks it is what issue 11 found: a RUNNING
// record with no execution behind it.
func (p *awsPath) cutStart(t *testing.T, start awsapp.APIHandler, describe awsapp.APIHandler) string {
	t.Helper()
	res, err := start(p.ctx, httpEvent(t, "start.json", "", func(ev *events.APIGatewayV2HTTPRequest) {
		ev.Body = `{"input":{"seconds":0},"callbackUrl":"` + p.recv.srv.URL + `/hooks"}`
		ev.Headers["content-length"] = ""
	}))
	wantStatus(t, "start killed before StartExecution", res, err, http.StatusInternalServerError)
	page, err := p.f.store.ListExecutions(p.ctx, eventTenant, longrun.ListQuery{Limit: 1})
	if err != nil || len(page.Executions) == 0 {
		t.Fatalf("no record after the cut start: %+v, %v", page, err)
	}
	id := page.Executions[0].ID
	res, err = describe(p.ctx, httpEvent(t, "describe.json", id, nil))
	wantStatus(t, "describe", res, err, http.StatusOK)
	if !strings.Contains(res.Body, `"RUNNING"`) {
		t.Fatalf("describe of the cut start = %s, want RUNNING", res.Body)
	}
	if started, err := p.f.engine.Started(p.ctx, id); err != nil || started {
		t.Fatalf("Started(%s) = %v, %v; want no execution behind the record", id, started, err)
	}
	return id
}

// TestSettleCutStarts kills the start function between the record and
// StartExecution and has SettleFunction's handler, on its clock, settle the
// record: within the time a start is retried it starts the execution, which
// then runs to its webhook as any other; past it, it fails the record with
// Execution.StartFailed and sends that webhook. On kumo and on moto.
func TestSettleCutStarts(t *testing.T) {
	t.Parallel()
	awstest.OnEach(t, testSettleCutStarts)
}

func testSettleCutStarts(t *testing.T, k awstest.Emulator) {
	p := newAWSPath(t, k)
	ctx := p.ctx
	start, err := p.app(t, "StartFunction", []func(*middleware.Stack) error{killedBeforeStartExecution}).Start()
	if err != nil {
		t.Fatal(err)
	}
	describe, err := p.app(t, "DescribeFunction", nil).Describe()
	if err != nil {
		t.Fatal(err)
	}
	work, err := p.app(t, "WorkerFunction", nil).Worker()
	if err != nil {
		t.Fatal(err)
	}
	settleApp := p.app(t, "SettleFunction", nil)
	clock := fakeclock.At(time.Time{})
	settleApp.Clock = clock
	sweep, err := settleApp.Settle()
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T) settle.Result {
		t.Helper()
		res, err := sweep(ctx, json.RawMessage(loadEvent(t, "settle.json", nil)))
		if err != nil {
			t.Fatalf("settle: %v", err)
		}
		return res
	}

	t.Run("started", func(t *testing.T) {
		id := p.cutStart(t, start, describe)
		rec, err := p.f.store.GetExecution(ctx, "", id)
		if err != nil {
			t.Fatal(err)
		}
		// Within the grace period the sweep leaves it alone: its start may
		// still be under way.
		clock.Set(rec.StartDate.Add(settle.DefaultGrace / 2))
		if res := run(t); res.Found != 0 {
			t.Fatalf("settle within the grace period = %+v, want nothing found", res)
		}
		clock.Set(rec.StartDate.Add(settle.DefaultGrace + time.Minute))
		if res := run(t); res != (settle.Result{Found: 1, Started: 1}) {
			t.Fatalf("settle = %+v, want the one record started", res)
		}
		if started, err := p.f.engine.Started(ctx, id); err != nil || !started {
			t.Fatalf("Started(%s) = %v, %v after settle; want its execution", id, started, err)
		}
		// Settled once: the next run finds nothing.
		if res := run(t); res.Found != 0 {
			t.Fatalf("second settle = %+v, want nothing found", res)
		}
		// The execution runs as any other: the worker, Finalize, the webhook.
		msg := p.f.receiveTask(t, id)
		out, err := work(ctx, events.SQSEvent{Records: []events.SQSMessage{{
			MessageId: msg.ID, ReceiptHandle: msg.Receipt, Body: msg.Body, EventSource: "aws:sqs",
			EventSourceARN: p.f.jobs.ARN, AWSRegion: awstest.Region,
		}}})
		if err != nil || len(out.BatchItemFailures) != 0 {
			t.Fatalf("worker = %+v, %v; want the record done", out, err)
		}
		_ = sqsqueue.New(k.SQS(), p.f.jobs.URL).Delete(ctx, msg.Receipt)
		wh := p.recv.event(t, id)
		if wh.Type != longrun.EventSucceeded || wh.Data.Status != longrun.StatusSucceeded {
			t.Errorf("webhook %s %s, want SUCCEEDED", wh.Type, wh.Data.Status)
		}
	})

	t.Run("failed with a webhook", func(t *testing.T) {
		id := p.cutStart(t, start, describe)
		rec, err := p.f.store.GetExecution(ctx, "", id)
		if err != nil {
			t.Fatal(err)
		}
		// Found only after the time a start is retried: it is failed.
		clock.Set(rec.StartDate.Add(settle.DefaultGiveUpAfter + time.Minute))
		if res := run(t); res != (settle.Result{Found: 1, Failed: 1}) {
			t.Fatalf("settle = %+v, want the one record failed", res)
		}
		wh := p.recv.event(t, id)
		if wh.Type != longrun.EventFailed || wh.Data.Status != longrun.StatusFailed || wh.Data.Error != longrun.ErrNameStartFailed {
			t.Errorf("webhook %s %s %q, want FAILED %s", wh.Type, wh.Data.Status, wh.Data.Error, longrun.ErrNameStartFailed)
		}
		res, err := describe(ctx, httpEvent(t, "describe.json", id, nil))
		wantStatus(t, "describe", res, err, http.StatusOK)
		if !strings.Contains(res.Body, `"FAILED"`) || !strings.Contains(res.Body, longrun.ErrNameStartFailed) {
			t.Errorf("describe after settle = %s, want FAILED with %s", res.Body, longrun.ErrNameStartFailed)
		}
		if started, err := p.f.engine.Started(ctx, id); err != nil || started {
			t.Errorf("Started(%s) = %v, %v; a failed start must not start later", id, started, err)
		}
		if res := run(t); res.Found != 0 {
			t.Fatalf("second settle = %+v, want nothing found", res)
		}
	})
}

// TestConcurrentRedeliversStartOneRoundOnAWS sends N redelivers of one
// delivered webhook at once through RedeliverFunction's handler on the
// DynamoDB store: one claims the round (202), the others get 409, and the
// deliver state machine runs one more round, which the receiver gets once.
func TestConcurrentRedeliversStartOneRoundOnAWS(t *testing.T) {
	t.Parallel()
	awstest.OnEach(t, testConcurrentRedelivers)
}

func testConcurrentRedelivers(t *testing.T, k awstest.Emulator) {
	p := newAWSPath(t, k)
	ctx := p.ctx
	redeliver, err := p.app(t, "RedeliverFunction", nil).Redeliver()
	if err != nil {
		t.Fatal(err)
	}
	id := longrun.NewExecutionID()
	p.f.seedExecution(t, id, p.recv.srv.URL+"/hooks", false, &longrun.Outcome{Status: longrun.StatusSucceeded, Output: json.RawMessage(`{"ok":true}`), StopDate: time.Now()})
	// The outcome's webhook, delivered in round 0.
	e, err := p.f.store.GetExecution(ctx, "", id)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.f.store.SaveDelivery(ctx, id, longrun.Delivery{
		EventID: "msg_" + id, Type: longrun.EventSucceeded, State: longrun.DeliveryDelivered,
		Attempts: []longrun.Attempt{{At: e.StopDate, StatusCode: 204}},
	}); err != nil {
		t.Fatal(err)
	}

	// The round's delivery waits until every redeliver is answered: a round
	// that ended first would rightly let a later redeliver start another.
	hold := make(chan struct{})
	p.recv.mu.Lock()
	p.recv.hold = hold
	p.recv.mu.Unlock()
	const n = 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := redeliver(ctx, httpEvent(t, "redeliver.json", id, nil))
			if err != nil {
				t.Errorf("redeliver: %v", err)
				return
			}
			codes[i] = res.StatusCode
		})
	}
	wg.Wait()
	close(hold)
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[http.StatusAccepted] != 1 || count[http.StatusConflict] != n-1 {
		t.Fatalf("%d concurrent redelivers answered %v, want one 202 and %d × 409", n, count, n-1)
	}

	wh := p.recv.event(t, id)
	if wh.Data.ExecutionID != id || wh.Type != longrun.EventSucceeded {
		t.Errorf("redelivered webhook %+v, want %s's execution.succeeded", wh, id)
	}
	// One round: the record's delivery is round 1, delivered with one more
	// attempt, and the deliver state machine ran once for this execution.
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err = p.f.store.GetExecution(ctx, "", id)
		if err != nil {
			t.Fatal(err)
		}
		if e.Webhook.State == longrun.DeliveryDelivered || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := e.Webhook; d.State != longrun.DeliveryDelivered || d.Round != 1 || len(d.Attempts) != 2 {
		t.Errorf("delivery after the redelivers = %+v, want round 1 delivered with 2 attempts in all", d)
	}
	out, err := k.SFN().ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(p.f.deliver)})
	if err != nil {
		t.Fatal(err)
	}
	var rounds []string
	for _, x := range out.Executions {
		if strings.HasPrefix(aws.ToString(x.Name), id) {
			rounds = append(rounds, aws.ToString(x.Name))
		}
	}
	if len(rounds) != 1 {
		t.Errorf("deliver executions of %s: %v, want one round", id, rounds)
	}
	select {
	case extra := <-p.recv.ch(id):
		t.Errorf("a second webhook arrived: %+v", extra)
	default:
	}
}
