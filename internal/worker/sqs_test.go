package worker

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	longrun "github.com/longrun/longrun"
)

// modeJob succeeds or fails as its input's "mode" says.
func modeJob(_ context.Context, in json.RawMessage, _ func(longrun.Progress)) (json.RawMessage, error) {
	var v struct{ Mode string }
	_ = json.Unmarshal(in, &v)
	if v.Mode == "fail" {
		return nil, &longrun.JobError{Name: "Test.Failed", Cause: "asked to"}
	}
	return json.RawMessage(`{"ok":true}`), nil
}

func TestSQSHandler(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/sqs-event.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	h := setup(t, modeJob)
	h.stepSleeps(t, time.Minute) // the backoff between the two sends passes
	unreachable := func(token string) bool { return strings.HasSuffix(token, "-unreachable") }
	p := NewProcessor(Config{
		Tasks: &tokenFailingReporter{reporter: h.rep, fails: unreachable}, Executions: h.store, Jobs: registryOf(modeJob),
		Clock: h.clock, SendAttempts: 2, HeartbeatInterval: time.Hour, ProgressInterval: time.Hour,
	})

	res, err := SQSHandler(p)(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range res.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	slices.Sort(failed)
	want := []string{"0b8c2a4e-1111-4a7e-9c1d-000000000003", "0b8c2a4e-1111-4a7e-9c1d-000000000005"}
	if !slices.Equal(failed, want) {
		t.Fatalf("batch item failures %v, want %v (the unreadable message and the one whose completion failed)", failed, want)
	}
	successes, failures, _ := h.rep.snapshot()
	var names []string
	for _, f := range failures {
		names = append(names, f.name)
	}
	slices.Sort(names)
	if len(successes) != 1+2 || !slices.Equal(names, []string{longrun.ErrNameBadMessage, "Test.Failed"}) {
		t.Fatalf("successes %v (want ok once, unreachable twice), failures %v", successes, names)
	}
	// The batch response must serialise as Lambda expects.
	out, _ := json.Marshal(res)
	if !strings.Contains(string(out), `"batchItemFailures":[{"itemIdentifier":"0b8c2a4e`) {
		t.Fatalf("response JSON %s", out)
	}
}

// tokenFailingReporter fails SendTaskSuccess for some tokens.
type tokenFailingReporter struct {
	*reporter
	fails func(token string) bool
}

func (r *tokenFailingReporter) SendTaskSuccess(ctx context.Context, token string, output json.RawMessage) error {
	err := r.reporter.SendTaskSuccess(ctx, token, output)
	if r.fails(token) {
		return errors.New("sfn: InternalFailure")
	}
	return err
}

func TestSQSHandlerOutOfTime(t *testing.T) {
	t.Parallel()
	h := setup(t, blockingJob(nil, nil))
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: taskBody("a")}}}
	// Lambda's deadline: the job is given up LambdaMargin before it, which
	// is already past.
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(LambdaMargin/2))
	defer cancel()
	res, err := SQSHandler(h.p)(ctx, ev)
	if err != nil || len(res.BatchItemFailures) != 0 {
		t.Fatalf("SQSHandler = %+v, %v; the failure is reported, so the message is done", res, err)
	}
	_, failures, _ := h.rep.snapshot()
	if len(failures) != 1 || failures[0].name != ErrNameOutOfTime || !strings.Contains(failures[0].cause, "longrun worker") {
		t.Fatalf("failures %+v", failures)
	}
}

// The Lambda worker holds each record's message as its job's lease: cut to
// the lease on receipt (the queue's visibility is at least the function's
// timeout), renewed every third of it while the job runs.
func TestLeasedSQSHandlerHoldsTheMessage(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h := setup(t, blockingJob(release, nil))
	q := newQueue()
	const lease = 60 * time.Second
	ev := events.SQSEvent{Records: []events.SQSMessage{{
		MessageId: "m-1", ReceiptHandle: "r-1",
		Body: `{"taskToken":"tok-1","executionArn":"arn:aws:states:eu-west-1:1:execution:sm:ex-1","executionId":"ex-1","input":{}}`,
	}}}
	done := make(chan error, 1)
	go func() {
		res, err := LeasedSQSHandler(h.p, q, lease)(context.Background(), ev)
		if err == nil && len(res.BatchItemFailures) > 0 {
			err = errors.New("the record failed")
		}
		done <- err
	}()
	leased := func(n int) func() bool {
		return func() bool { _, v := q.state(); return len(v["r-1"]) == n }
	}
	eventually(t, "the lease taken on receipt", leased(1))
	eventually(t, "heartbeat, progress and lease tickers", func() bool { return h.clock.Waits() == 3 })
	h.clock.Advance(lease / 3)
	eventually(t, "the lease renewed", leased(2))
	close(release)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if _, v := q.state(); !slices.Equal(v["r-1"], []time.Duration{lease, lease}) {
		t.Fatalf("visibility changes %v, want the lease on receipt and once per third of it", v["r-1"])
	}
	if n := h.clock.Waits(); n != 0 {
		t.Fatalf("%d waits still pending after the job: the tickers must stop with it", n)
	}
}
