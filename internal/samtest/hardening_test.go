package samtest_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awsapp"
	"github.com/longrun/longrun/internal/template"
)

// intrinsic reports whether v is !Fn arg (arg compared as written).
func isIntrinsic(v any, fn string, arg any) bool {
	in, ok := v.(*template.Intrinsic)
	return ok && in.Fn == fn && reflect.DeepEqual(in.Arg, arg)
}

func workerJobsEvent(t *testing.T, tpl *template.Template) map[string]any {
	t.Helper()
	fn, err := tpl.Function("WorkerFunction")
	if err != nil {
		t.Fatal(err)
	}
	ev, ok := fn.Events()["Jobs"]
	if !ok || ev.Type != "SQS" {
		t.Fatalf("WorkerFunction has no SQS event Jobs: %v", fn.Events())
	}
	return ev.Properties
}

// A burst of jobs cannot take the account's Lambda concurrency: the worker's
// event source is bounded by a parameter within Lambda's limits.
func TestWorkerConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	scaling, _ := workerJobsEvent(t, tpl)["ScalingConfig"].(map[string]any)
	if !isIntrinsic(scaling["MaximumConcurrency"], "Ref", "WorkerMaxConcurrency") {
		t.Fatalf("Jobs ScalingConfig = %v, want MaximumConcurrency: !Ref WorkerMaxConcurrency", scaling)
	}
	p := tpl.Parameters["WorkerMaxConcurrency"]
	if p.MinValue == nil || *p.MinValue < 2 || p.MaxValue == nil || *p.MaxValue > 1000 || !p.HasDefault {
		t.Errorf("WorkerMaxConcurrency %+v: want a default within Lambda's 2..1000", p)
	}
}

// Jobs that may outlive Lambda are routed away from it by turning its trigger
// off (LambdaWorker=false); `longrun worker` then takes them, with the
// managed policy the stack outputs.
func TestLambdaWorkerCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	enabled := workerJobsEvent(t, tpl)["Enabled"]
	if !isIntrinsic(enabled, "Fn::If", []any{"LambdaWorkerOn", true, false}) {
		t.Fatalf("Jobs Enabled = %#v, want !If [LambdaWorkerOn, true, false]", enabled)
	}
	cond := tpl.Conditions["LambdaWorkerOn"]
	if !isIntrinsic(cond, "Fn::Equals", []any{&template.Intrinsic{Fn: "Ref", Arg: "LambdaWorker"}, "true"}) {
		t.Errorf("Condition LambdaWorkerOn = %#v, want !Equals [!Ref LambdaWorker, \"true\"]", cond)
	}
	out, ok := tpl.Outputs["WorkerPollerPolicyArn"]
	if !ok || !isIntrinsic(mapping(out)["Value"], "Ref", "WorkerPollerPolicy") {
		t.Errorf("output WorkerPollerPolicyArn = %v, want !Ref WorkerPollerPolicy", out)
	}
	if tpl.Resources["WorkerPollerPolicy"].Type != "AWS::IAM::ManagedPolicy" {
		t.Errorf("WorkerPollerPolicy is %q, want an AWS::IAM::ManagedPolicy", tpl.Resources["WorkerPollerPolicy"].Type)
	}
}

func mapping(v any) map[string]any { m, _ := v.(map[string]any); return m }

// No TIMED_OUT or ABORTED outcome is dropped silently: notify's failed
// asynchronous invocations and the rule's undeliverable events land in
// queues of the stack, each with an alarm (TestAlarms).
func TestNotifyFailuresAreQueued(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	fn, err := tpl.Function("NotifyFunction")
	if err != nil {
		t.Fatal(err)
	}
	onFailure := mapping(mapping(mapping(fn.Properties["EventInvokeConfig"])["DestinationConfig"])["OnFailure"])
	if onFailure["Type"] != "SQS" || !isIntrinsic(onFailure["Destination"], "Fn::GetAtt", []any{"NotifyFailuresQueue", "Arn"}) {
		t.Errorf("NotifyFunction EventInvokeConfig OnFailure = %v, want SQS NotifyFailuresQueue", onFailure)
	}
	dlq := mapping(fn.Events()["StatusChange"].Properties["DeadLetterConfig"])
	if !isIntrinsic(dlq["Arn"], "Fn::GetAtt", []any{"StatusChangeDeadLetterQueue", "Arn"}) {
		t.Errorf("StatusChange DeadLetterConfig = %v, want StatusChangeDeadLetterQueue", dlq)
	}
	policy := tpl.Resources["StatusChangeDeadLetterQueuePolicy"]
	doc, _ := json.Marshal(policy.Properties)
	if policy.Type != "AWS::SQS::QueuePolicy" || !strings.Contains(string(doc), "events.amazonaws.com") || !strings.Contains(string(doc), "sqs:SendMessage") {
		t.Errorf("StatusChangeDeadLetterQueuePolicy %s: want EventBridge allowed to send", doc)
	}
}

// A lease at or past the job timeout cannot be deployed: CloudFormation
// Rules cannot compare numbers, so the parameters' ranges do not overlap.
func TestLeaseBelowTimeoutByConstruction(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	hb, to := tpl.Parameters["JobHeartbeatSeconds"], tpl.Parameters["JobTimeoutSeconds"]
	if hb.MaxValue == nil || to.MinValue == nil || *hb.MaxValue >= *to.MinValue {
		t.Fatalf("JobHeartbeatSeconds MaxValue %v, JobTimeoutSeconds MinValue %v: want the first below the second", hb.MaxValue, to.MinValue)
	}
}

// A Fail state never throws a name the ASL reserves (States.*): moto and
// LocalStack end such an execution with States.Runtime. Step Functions' own
// errors end under ours, the job's under its own.
func TestFailStatesThrowNoReservedNames(t *testing.T) {
	t.Parallel()
	def := fakeDeployment(t).substituted(t, "LongrunStateMachine")
	for _, tc := range []struct{ thrown, want string }{
		{"States.Timeout", "Job.Timeout"},
		{"States.TaskFailed", "Job.WorkflowError"},
		{"States.HeartbeatTimeout", "Job.WorkflowError"},
		{"Ramen.Failed", "Ramen.Failed"},
	} {
		errName, cause := aslFailure(t, def, tc.thrown, "why")
		if errName != tc.want || cause != "why" {
			t.Errorf("Work threw %s: the execution failed with %s (%s), want %s (why)", tc.thrown, errName, cause, tc.want)
		}
	}
	var sm struct {
		States map[string]struct{ Type, Error string }
	}
	if err := json.Unmarshal([]byte(def), &sm); err != nil {
		t.Fatal(err)
	}
	for name, s := range sm.States {
		if s.Type == "Fail" && strings.HasPrefix(s.Error, "States.") {
			t.Errorf("Fail state %s throws the reserved %s", name, s.Error)
		}
	}
}

// Finalize keeps a job's outcome waiting through an hour-long notify
// outage rather than ending the execution FAILED after two minutes.
func TestFinalizeRetriesOutlastAnOutage(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(root, "statemachine", "longrun.asl.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sm struct {
		States map[string]struct {
			Retry []struct {
				ErrorEquals     []string
				IntervalSeconds float64
				MaxAttempts     int
				BackoffRate     float64
				MaxDelaySeconds float64
				JitterStrategy  string
			}
		}
	}
	if err := json.Unmarshal(data, &sm); err != nil {
		t.Fatal(err)
	}
	for _, state := range []string{"Finalize", "FinalizeFailure"} {
		retries := sm.States[state].Retry
		if len(retries) != 1 || len(retries[0].ErrorEquals) != 1 || retries[0].ErrorEquals[0] != "States.ALL" {
			t.Fatalf("%s: Retry %+v, want one retrier on States.ALL", state, retries)
		}
		r := retries[0]
		var total float64 // seconds, without jitter
		d := r.IntervalSeconds
		for range r.MaxAttempts {
			total += min(d, r.MaxDelaySeconds)
			d *= r.BackoffRate
		}
		// FULL jitter waits a uniform share of each delay: half on average.
		if expected := total / 2; r.JitterStrategy != "FULL" || expected < time.Hour.Seconds() {
			t.Errorf("%s retries for %.0f s on average (%s jitter), want at least an hour", state, expected, r.JitterStrategy)
		}
	}
}

// sam build runs the Makefile in the repository rather than in a copy of it
// per function (every CodeUri is the root).
func TestSamconfigBuildsInSource(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(root, "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"default", "prod"} {
		section := "[" + env + ".build.parameters]"
		_, rest, ok := strings.Cut(string(data), section)
		if !ok {
			t.Fatalf("samconfig.toml has no %s", section)
		}
		if next := strings.Index(rest, "\n["); next >= 0 {
			rest = rest[:next]
		}
		if !strings.Contains(rest, "\nbuild_in_source = true") {
			t.Errorf("%s lacks build_in_source = true", section)
		}
	}
}

// The managed policy for `longrun worker` allows exactly what the poller
// calls on every path: the real poller runs two jobs on kumo with recorded
// clients, one of them reporting progress after its record ended.
func TestPollerPolicyIsExact(t *testing.T) {
	t.Parallel()
	f := newSinkFixture(t)
	rec := f.recorder()
	// `longrun worker` is configured with both queues (the stack's
	// JobsQueueUrl and LongJobsQueueUrl outputs).
	app := f.app(t, "WorkerFunction", rec, map[string]string{awsapp.EnvJobHeartbeatSeconds: "3", awsapp.EnvJobsQueueURL: f.jobs.URL, awsapp.EnvLongJobsQueueURL: f.long.URL})
	var mu sync.Mutex
	ran := map[string]bool{}
	app.Jobs = longrun.NewRegistry()
	app.Jobs.Handle("test", func(ctx context.Context, in json.RawMessage, report func(longrun.Progress)) (json.RawMessage, error) {
		var v struct {
			ID   string
			Fail bool
			Wait bool
		}
		_ = json.Unmarshal(in, &v)
		if v.ID != "" { // the record ended before the job reports
			if _, _, err := f.store.FinishExecution(ctx, v.ID, longrun.Outcome{Status: longrun.StatusAborted, StopDate: time.Now()}); err != nil {
				return nil, err
			}
		}
		report(longrun.Progress{Percent: 50})
		mu.Lock()
		ran[string(in)] = true
		mu.Unlock()
		if v.Wait { // past a third of the 3 s lease: it is renewed
			select {
			case <-time.After(1500 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if v.Fail {
			return nil, &longrun.JobError{Name: "Test.Failed", Cause: "asked to"}
		}
		return json.RawMessage(`{}`), nil
	}, longrun.JobOptions{})
	poller, err := app.Poller(3, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- poller.Run(ctx) }()
	defer func() { stop(); <-done }()

	var ids []string
	// "long" is a kind the start function routes to the long-jobs queue:
	// the poller reads it too, and holds its lease there.
	for _, kind := range []string{"wait", "late", "fail", "long"} {
		id := longrun.NewExecutionID()
		e := f.seedExecution(t, id, "", false, nil)
		input := map[string]string{"wait": `{"wait":true}`, "late": `{"id":"` + id + `"}`, "fail": `{"fail":true}`, "long": `{"wait":true,"long":true}`}[kind]
		queue := f.jobs.URL
		if kind == "long" {
			queue = f.long.URL
		}
		if err := f.engine.StartExecution(context.Background(), longrun.StateInput{ExecutionID: id, ExecutionARN: e.ARN, Input: json.RawMessage(input),
			Limits: longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 3}, BackstopSeconds: 120, QueueURL: queue}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if req := f.notified(t, id); req.Action != longrun.NotifyFinalize {
			t.Errorf("%s: notify got %+v, want finalize", id, req)
		}
	}
	stop()
	<-done
	done <- nil

	var grants []grant
	doc := mapping(f.tpl.Resources["WorkerPollerPolicy"].Properties["PolicyDocument"])
	for _, s := range doc["Statement"].([]any) {
		st := mapping(s)
		resources, ok := st["Resource"].([]any)
		if !ok {
			resources = []any{st["Resource"]}
		}
		for _, r := range resources {
			res, err := f.tpl.String(r, f.resolve)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range st["Action"].([]any) {
				grants = append(grants, grant{Sid: st["Sid"].(string), Action: a.(string), Resource: res})
			}
		}
	}
	calls := rec.recorded()
	t.Logf("poller calls: %v", calls)
	compare(t, "WorkerPollerPolicy", grants, calls, nil)
}

// Long jobs go where they can finish: the LongJobsQueue (with its own
// dead-letter queue) is read by no Lambda function, only by `longrun
// worker` (its policy: TestPollerPolicyIsExact); the start function is given
// both queues and the Lambda worker's timeout to route by; the Work state
// sends to the queue the state input names; and the queue wait that sizes
// the Work state's backstop can never outlast a message's retention.
func TestLongJobsGoWhereTheyCanFinish(t *testing.T) {
	t.Parallel()
	d := fakeDeployment(t)
	tpl := d.tpl
	q, err := tpl.Queue("LongJobsQueue")
	if err != nil {
		t.Fatal(err)
	}
	if q.DeadLetterQueue != "LongJobsDeadLetterQueue" || q.MaxReceiveCount == 0 {
		t.Errorf("LongJobsQueue redrive %+v, want LongJobsDeadLetterQueue", q)
	}
	for _, id := range tpl.ResourcesOfType("AWS::Serverless::Function") {
		fn, err := tpl.Function(id)
		if err != nil {
			t.Fatal(err)
		}
		for name, ev := range fn.Events() {
			if ev.Type == "SQS" && !isIntrinsic(ev.Properties["Queue"], "Fn::GetAtt", []any{"JobsQueue", "Arn"}) {
				t.Errorf("%s event %s reads %v: only the JobsQueue may have a Lambda event source", id, name, ev.Properties["Queue"])
			}
		}
	}
	for _, st := range mustStatements(t, d, "WorkerRole") {
		for _, r := range st {
			if r == d.long.ARN {
				t.Errorf("the Lambda worker's role reaches the long-jobs queue")
			}
		}
	}
	env := d.env(t, "StartFunction")
	want := map[string]string{
		awsapp.EnvJobsQueueURL: d.jobs.URL, awsapp.EnvLongJobsQueueURL: d.long.URL,
		awsapp.EnvWorkerTimeoutSeconds: "900", awsapp.EnvMaxQueueWaitSeconds: "86400",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("StartFunction %s = %q, want %q", k, env[k], v)
		}
	}
	var def struct {
		States map[string]struct {
			TimeoutSecondsPath string
			Parameters         map[string]any
		}
	}
	if err := json.Unmarshal([]byte(d.substituted(t, "LongrunStateMachine")), &def); err != nil {
		t.Fatal(err)
	}
	work := def.States["Work"]
	body := mapping(work.Parameters["MessageBody"])
	if work.Parameters["QueueUrl.$"] != "$.queueUrl" || work.TimeoutSecondsPath != "$.backstopSeconds" || body["limits.$"] != "$.limits" {
		t.Errorf("Work: QueueUrl.$ %v, TimeoutSecondsPath %q, MessageBody limits.$ %v; want the state input's queue, backstop and limits",
			work.Parameters["QueueUrl.$"], work.TimeoutSecondsPath, body["limits.$"])
	}
	wait := tpl.Parameters["MaxQueueWaitSeconds"]
	if wait.MaxValue == nil {
		t.Fatal("MaxQueueWaitSeconds has no MaxValue")
	}
	maxWait := int(*wait.MaxValue)
	for _, id := range []string{"JobsQueue", "LongJobsQueue"} {
		retention, err := tpl.Int(tpl.Resources[id].Properties["MessageRetentionPeriod"], nil)
		if err != nil || maxWait > retention {
			t.Errorf("%s keeps a message %d s (%v); MaxQueueWaitSeconds may be %d: a wait past the retention waits for a message SQS dropped", id, retention, err, maxWait)
		}
	}
	if out, ok := tpl.Outputs["LongJobsQueueUrl"]; !ok || !isIntrinsic(mapping(out)["Value"], "Ref", "LongJobsQueue") {
		t.Errorf("output LongJobsQueueUrl = %v, want !Ref LongJobsQueue (for `longrun worker`)", out)
	}
}

// mustStatements is the resolved resources of each statement of an
// AWS::IAM::Role's inline policies.
func mustStatements(t *testing.T, d *deployment, role string) [][]string {
	t.Helper()
	tpl := d.tpl
	var out [][]string
	for _, p := range tpl.Resources[role].Properties["Policies"].([]any) {
		for _, s := range mapping(mapping(p)["PolicyDocument"])["Statement"].([]any) {
			res, ok := mapping(s)["Resource"].([]any)
			if !ok {
				res = []any{mapping(s)["Resource"]}
			}
			var arns []string
			for _, r := range res {
				arn, err := tpl.String(r, d.resolve)
				if err != nil {
					t.Fatal(err)
				}
				arns = append(arns, arn)
			}
			out = append(out, arns)
		}
	}
	return out
}
