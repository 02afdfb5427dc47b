package template_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/longrun/longrun/internal/template"
)

// fakeResolver answers "ref:<Name>" and "att:<Name>.<Attr>", and the
// pseudo parameters as a deployed stack named "stack" in eu-west-1 would.
func fakeResolver(name, attr string) (string, error) {
	switch name {
	case "AWS::Region":
		return "eu-west-1", nil
	case "AWS::StackName":
		return "stack", nil
	case "AWS::AccountId":
		return "123456789012", nil
	case "AWS::Partition":
		return "aws", nil
	}
	if attr != "" {
		return "att:" + name + "." + attr, nil
	}
	return "ref:" + name, nil
}

func setup(t *testing.T, file string) *template.Template {
	t.Helper()
	tpl, err := template.Load(filepath.Join("testdata", file))
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return tpl
}

func TestEvalIntrinsics(t *testing.T) {
	t.Parallel()
	tpl := setup(t, "intrinsics.yaml")
	props := tpl.Resources["Values"].Properties
	tests := []struct {
		prop string
		want any
	}{
		{"ShortRef", "ref:Queue"},
		{"LongRef", "ref:Queue"},
		{"ParamRef", "dev"},
		{"Pseudo", "eu-west-1"},
		{"ShortGetAtt", "att:Queue.Arn"},
		{"LongGetAtt", "att:Queue.Arn"},
		{"DottedGetAtt", "att:Queue.QueueName"},
		{"Sub", "stack-dev-att:Queue.QueueName-${Literal}"},
		{"SubVars", "a-dev/ref:Queue"},
		{"Join", "x:30:att:Queue.Arn"},
		{"Select", "b"},
		{"IfDev", "yes-dev"},
		{"IfProd", nil},
		{"ListWithNoValue", []any{"one", "three"}},
		{"InMap", 128},
		{"Cond1", true},
		{"Cond2", false},
		{"Number", 42},
		{"Bool", true},
	}
	for _, tt := range tests {
		t.Run(tt.prop, func(t *testing.T) {
			t.Parallel()
			v, ok := props[tt.prop]
			if !ok {
				t.Fatalf("no property %s in the fixture", tt.prop)
			}
			got, err := tpl.Eval(v, fakeResolver)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Eval(%s) = %#v, want %#v", tt.prop, got, tt.want)
			}
		})
	}
}

func TestEvalDropsNoValueProperties(t *testing.T) {
	t.Parallel()
	tpl := setup(t, "intrinsics.yaml")
	got, err := tpl.Eval(tpl.Resources["Values"].Properties, fakeResolver)
	if err != nil {
		t.Fatalf("Eval: %v", err)
	}
	if _, ok := got.(map[string]any)["IfProd"]; ok {
		t.Errorf("IfProd resolved to AWS::NoValue but is still present: %#v", got)
	}
}

func TestEvalErrors(t *testing.T) {
	t.Parallel()
	tpl := setup(t, "intrinsics.yaml")
	failing := func(name, attr string) (string, error) { return "", errors.New("unknown here") }
	tests := []struct {
		name    string
		v       any
		r       template.Resolver
		wantErr string
	}{
		{"unknown ref", &template.Intrinsic{Fn: "Ref", Arg: "Nope"}, fakeResolver, "no such parameter or resource"},
		{"unknown getatt", &template.Intrinsic{Fn: "Fn::GetAtt", Arg: []any{"Nope", "Arn"}}, fakeResolver, "no such resource"},
		{"parameter without default", &template.Intrinsic{Fn: "Ref", Arg: "NoDefault"}, fakeResolver, "has no default"},
		{"resolver error is wrapped", &template.Intrinsic{Fn: "Ref", Arg: "Queue"}, failing, "!Ref Queue: unknown here"},
		{"sub names unknown", &template.Intrinsic{Fn: "Fn::Sub", Arg: "${Missing}"}, fakeResolver, "Missing"},
		{"unsupported function", &template.Intrinsic{Fn: "Fn::ImportValue", Arg: "x"}, fakeResolver, "not supported"},
		{"unknown condition", &template.Intrinsic{Fn: "Fn::If", Arg: []any{"Nope", "a", "b"}}, fakeResolver, "no condition Nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tpl.Eval(tt.v, tt.r)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Eval error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"not yaml", "Resources: [", "parse template"},
		{"no resources", "Parameters: {}\n", "no Resources"},
		{"resource without type", "Resources:\n  X:\n    Properties: {}\n", "X has no Type"},
		{"getatt without attribute", "Resources:\n  X:\n    Type: T\n    Properties:\n      A: !GetAtt Y\n", "want Name.Attribute"},
		{"merge keys", "Resources:\n  X:\n    Type: T\n    Properties:\n      <<: {a: 1}\n", "merge keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := template.Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParametersAndQueue(t *testing.T) {
	t.Parallel()
	tpl := setup(t, "intrinsics.yaml")
	p := tpl.Parameters["Seconds"]
	if p.Type != "Number" || p.Default != "30" || !p.HasDefault || p.MinValue == nil || *p.MinValue != 1 || p.MaxValue == nil || *p.MaxValue != 60 {
		t.Errorf("Seconds = %+v", p)
	}
	if tpl.Parameters["NoDefault"].HasDefault {
		t.Error("NoDefault has a default")
	}
	q, err := tpl.Queue("Queue")
	if err != nil {
		t.Fatalf("Queue: %v", err)
	}
	if want := (template.Queue{LogicalID: "Queue", VisibilityTimeout: 30, MaxReceiveCount: 3, DeadLetterQueue: "DLQ"}); q != want {
		t.Errorf("Queue = %+v, want %+v", q, want)
	}
	dlq, err := tpl.Queue("DLQ")
	if err != nil || dlq.VisibilityTimeout != 30 || dlq.MaxReceiveCount != 0 {
		t.Errorf("DLQ = %+v, %v; want SQS defaults", dlq, err)
	}
	if _, err := tpl.Queue("Fn"); err == nil {
		t.Error("Queue(Fn) succeeded on a function")
	}
}

func TestFunctionGlobalsAndRoutes(t *testing.T) {
	t.Parallel()
	tpl := setup(t, "intrinsics.yaml")
	fn, err := tpl.Function("Fn")
	if err != nil {
		t.Fatalf("Function: %v", err)
	}
	timeout, err := tpl.Int(fn.Timeout(), fakeResolver)
	if err != nil || timeout != 30 {
		t.Errorf("Timeout = %d, %v; want 30 from Globals", timeout, err)
	}
	env, err := tpl.Eval(fn.Environment(), fakeResolver)
	if err != nil {
		t.Fatalf("Environment: %v", err)
	}
	if want := map[string]any{"FROM_GLOBALS": "g", "OVERRIDDEN": "f"}; !reflect.DeepEqual(env, want) {
		t.Errorf("Environment = %v, want %v", env, want)
	}
	routes, err := tpl.Routes()
	if err != nil {
		t.Fatalf("Routes: %v", err)
	}
	if want := []template.Route{{Method: "GET", Path: "/things/{id}", Function: "Fn", Event: "Get"}}; !reflect.DeepEqual(routes, want) {
		t.Errorf("Routes = %+v, want %+v", routes, want)
	}
}

func TestStatements(t *testing.T) {
	t.Parallel()
	tpl := setup(t, "managed.yaml")
	tests := []struct {
		id         string
		wantAction []string
		wantErr    string
	}{
		{"Crud", nil, "not an inline"},
		{"Named", nil, "not an inline"},
		{"ManagedRoleFn", nil, "ManagedPolicyArns"},
		{"Inline", []string{"dynamodb:GetItem"}, ""},
		{"Explicit", []string{"sqs:ReceiveMessage", "sqs:DeleteMessage"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			sts, err := tpl.Statements(tt.id)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Statements error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Statements: %v", err)
			}
			if len(sts) != 1 || !reflect.DeepEqual(sts[0].Action, tt.wantAction) || sts[0].Effect != "Allow" {
				t.Errorf("Statements = %+v, want one Allow of %v", sts, tt.wantAction)
			}
		})
	}
}

func TestReferences(t *testing.T) {
	t.Parallel()
	tpl := setup(t, "intrinsics.yaml")
	seen := map[string]bool{}
	for _, r := range tpl.References() {
		seen[r.Target+"."+r.Attr] = true
	}
	for _, want := range []string{"Queue.", "Queue.Arn", "Queue.QueueName", "Stage.", "AWS::StackName.", "DLQ.Arn", "Seconds."} {
		if !seen[want] {
			t.Errorf("References lacks %s; got %v", want, seen)
		}
	}
	if seen["Literal."] || seen["Name."] {
		t.Errorf("References lists a ${!Literal} or a !Sub-local variable: %v", seen)
	}
}

// The real template: what `longrun dev` and the tests rely on.
func TestRealTemplate(t *testing.T) {
	t.Parallel()
	tpl, err := template.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Run("state machines and substitutions", func(t *testing.T) {
		t.Parallel()
		sms, err := tpl.StateMachines()
		if err != nil {
			t.Fatalf("StateMachines: %v", err)
		}
		got := map[string]string{}
		for _, sm := range sms {
			got[sm.LogicalID] = sm.Type + " " + sm.DefinitionURI
			subs, err := tpl.Substitutions(sm, fakeResolver)
			if err != nil {
				t.Fatalf("Substitutions: %v", err)
			}
			want := map[string]string{"JobsQueueUrl": "ref:JobsQueue", "NotifyFunctionArn": "att:NotifyFunction.Arn"}
			if !reflect.DeepEqual(subs, want) {
				t.Errorf("%s substitutions = %v, want %v", sm.LogicalID, subs, want)
			}
			def, err := tpl.Definition(sm)
			if err != nil || !strings.Contains(string(def), "${NotifyFunctionArn}") {
				t.Errorf("%s definition: %v (%d bytes)", sm.LogicalID, err, len(def))
			}
		}
		want := map[string]string{
			"LongrunStateMachine": "STANDARD statemachine/longrun.asl.json",
			"DeliverStateMachine": "STANDARD statemachine/deliver.asl.json",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("state machines = %v, want %v", got, want)
		}
	})
	t.Run("jobs queue", func(t *testing.T) {
		t.Parallel()
		q, err := tpl.Queue("JobsQueue")
		if err != nil {
			t.Fatalf("Queue: %v", err)
		}
		if q.VisibilityTimeout != 5400 || q.MaxReceiveCount != 5 || q.DeadLetterQueue != "JobsDeadLetterQueue" {
			t.Errorf("JobsQueue = %+v", q)
		}
	})
	t.Run("worker timeout and environment", func(t *testing.T) {
		t.Parallel()
		fn, err := tpl.Function("WorkerFunction")
		if err != nil {
			t.Fatalf("Function: %v", err)
		}
		timeout, err := tpl.Int(fn.Timeout(), fakeResolver)
		if err != nil || timeout != 900 {
			t.Errorf("worker Timeout = %d, %v; want the WorkerTimeoutSeconds default 900", timeout, err)
		}
		env, err := tpl.Eval(fn.Environment(), fakeResolver)
		if err != nil {
			t.Fatalf("Environment: %v", err)
		}
		if want := map[string]any{"LONGRUN_FUNCTION": "worker", "LONGRUN_TABLE_NAME": "ref:Table", "AWS_ENDPOINT_URL": "", "LONGRUN_RAMEN_TIMER_SECONDS": "10", "LONGRUN_JOB_HEARTBEAT_SECONDS": "60", "LONGRUN_JOBS_QUEUE_URL": "ref:JobsQueue", "LONGRUN_RETENTION_DAYS": "90"}; !reflect.DeepEqual(env, want) {
			t.Errorf("worker Environment = %v, want %v", env, want)
		}
	})
	t.Run("routes", func(t *testing.T) {
		t.Parallel()
		routes, err := tpl.Routes()
		if err != nil {
			t.Fatalf("Routes: %v", err)
		}
		var got []string
		for _, r := range routes {
			got = append(got, fmt.Sprintf("%s %s -> %s", r.Method, r.Path, r.Function))
		}
		want := []string{
			"POST /describe-execution -> DescribeFunction",
			"GET /executions -> DescribeFunction",
			"DELETE /executions/{id} -> StopFunction",
			"GET /executions/{id} -> DescribeFunction",
			"POST /executions/{id}/redeliver -> RedeliverFunction",
			"POST /start-execution -> StartFunction",
			"POST /stop-execution -> StopFunction",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("routes =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("notify's deliver ARN matches the deliver state machine's name", func(t *testing.T) {
		t.Parallel()
		fn, err := tpl.Function("NotifyFunction")
		if err != nil {
			t.Fatalf("Function: %v", err)
		}
		arn, err := tpl.String(fn.Environment()["LONGRUN_DELIVER_STATE_MACHINE_ARN"], fakeResolver)
		if err != nil {
			t.Fatalf("eval: %v", err)
		}
		name, err := tpl.String(tpl.Resources["DeliverStateMachine"].Properties["Name"], fakeResolver)
		if err != nil {
			t.Fatalf("eval: %v", err)
		}
		if want := "arn:aws:states:eu-west-1:123456789012:stateMachine:" + name; arn != want {
			t.Errorf("notify's LONGRUN_DELIVER_STATE_MACHINE_ARN = %s, want %s", arn, want)
		}
	})
}
