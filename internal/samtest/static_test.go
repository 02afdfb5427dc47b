package samtest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/longrun/longrun/internal/api"
	"github.com/longrun/longrun/internal/asl"
	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/dynamostore"
	"github.com/longrun/longrun/internal/template"
)

// fakeDeployment resolves the template for a stack that was never created:
// enough for checks that only need well-formed values.
func fakeDeployment(t *testing.T) *deployment {
	t.Helper()
	return &deployment{
		tpl: loadTemplate(t), stack: "longrun-test", table: "longrun-test-table",
		jobs:      awsQueue("longrun-test-jobs"),
		dlq:       awsQueue("longrun-test-dlq"),
		long:      awsQueue("longrun-test-long"),
		longDLQ:   awsQueue("longrun-test-long-dlq"),
		longrun:   "arn:aws:states:us-east-1:000000000000:stateMachine:longrun-test-longrun",
		deliver:   "arn:aws:states:us-east-1:000000000000:stateMachine:longrun-test-deliver",
		notifyARN: "arn:aws:lambda:us-east-1:000000000000:function:longrun-test-notify",
	}
}

// The functions of the template and the directory of each one's main.
var functionDirs = map[string]string{
	"AuthorizerFunction": "authorizer",
	"StartFunction":      "start",
	"DescribeFunction":   "describe",
	"StopFunction":       "stop",
	"RedeliverFunction":  "redeliver",
	"WorkerFunction":     "worker",
	"NotifyFunction":     "notify",
	"SettleFunction":     "settle",
}

var substitutionRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// checkTransitions is a check of its own, independent of internal/asl: every
// Next, Default, Choices[].Next and Catch[].Next names a state, and StartAt
// does too.
func checkTransitions(def []byte) []string {
	var sm struct {
		StartAt string
		States  map[string]struct {
			Next    string
			Default string
			Choices []struct{ Next string }
			Catch   []struct{ Next string }
		}
	}
	if err := json.Unmarshal(def, &sm); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	var problems []string
	check := func(from, field, to string) {
		if _, ok := sm.States[to]; to != "" && !ok {
			problems = append(problems, fmt.Sprintf("%s: %s names %q, which is not a state", from, field, to))
		}
	}
	if sm.StartAt == "" {
		problems = append(problems, "no StartAt")
	}
	check("top level", "StartAt", sm.StartAt)
	for name, s := range sm.States {
		check(name, "Next", s.Next)
		check(name, "Default", s.Default)
		for i, c := range s.Choices {
			check(name, fmt.Sprintf("Choices[%d].Next", i), c.Next)
		}
		for i, c := range s.Catch {
			check(name, fmt.Sprintf("Catch[%d].Next", i), c.Next)
		}
	}
	slices.Sort(problems)
	return problems
}

func TestTransitionCheckCatchesBrokenDefinitions(t *testing.T) {
	t.Parallel()
	def, err := os.ReadFile(filepath.Join("testdata", "broken.asl.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`Choose: Choices[0].Next names "Nowhere", which is not a state`,
		`Choose: Default names "Missing", which is not a state`,
		`Work: Catch[0].Next names "Gone", which is not a state`,
	}
	if got := checkTransitions(def); !reflect.DeepEqual(got, want) {
		t.Errorf("checkTransitions =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := asl.Parse(def); err == nil {
		t.Error("asl.Parse accepted the broken definition")
	}
}

// Both state machines, after substitution, parse with internal/asl (which
// refuses anything it cannot run exactly as Step Functions would), every
// transition names a state, and every ${...} has a DefinitionSubstitution.
func TestStateMachineDefinitions(t *testing.T) {
	t.Parallel()
	d := fakeDeployment(t)
	sms, err := d.tpl.StateMachines()
	if err != nil {
		t.Fatal(err)
	}
	if len(sms) != 2 {
		t.Fatalf("%d state machines in the template, want 2", len(sms))
	}
	for _, sm := range sms {
		t.Run(sm.LogicalID, func(t *testing.T) {
			t.Parallel()
			raw, err := d.tpl.Definition(sm)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range substitutionRef.FindAllSubmatch(raw, -1) {
				if _, ok := sm.Substitutions[string(m[1])]; !ok {
					t.Errorf("${%s} has no DefinitionSubstitution", m[1])
				}
			}
			subs, err := d.tpl.Substitutions(sm, d.resolve)
			if err != nil {
				t.Fatal(err)
			}
			def, err := asl.Substitute(raw, subs)
			if err != nil {
				t.Fatalf("substitute: %v", err)
			}
			if !json.Valid(def) {
				t.Fatal("the substituted definition is not JSON")
			}
			if problems := checkTransitions(def); len(problems) > 0 {
				t.Errorf("transitions:\n%s", strings.Join(problems, "\n"))
			}
			if _, err := asl.Parse(def); err != nil {
				t.Errorf("asl.Parse: %v", err)
			}
			if sm.Type != "STANDARD" {
				t.Errorf("Type %s: .waitForTaskToken needs STANDARD", sm.Type)
			}
		})
	}
}

// attributes lists the !GetAtt attributes each resource type has.
var attributes = map[string][]string{
	"AWS::Serverless::Function":     {"Arn"},
	"AWS::Serverless::StateMachine": {"Arn", "Name"},
	"AWS::SQS::Queue":               {"Arn", "QueueName", "QueueUrl"},
	"AWS::DynamoDB::Table":          {"Arn", "StreamArn"},
	"AWS::Logs::LogGroup":           {"Arn"},
	"AWS::IAM::Role":                {"Arn", "RoleId"},
}

var pseudoParameters = []string{"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::StackId", "AWS::URLSuffix", "AWS::NoValue"}

// Every !Ref, !GetAtt and ${...} of a !Sub names a resource, parameter or
// pseudo parameter, and every !GetAtt an attribute its resource has.
func TestReferencesExist(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	refs := tpl.References()
	if len(refs) < 50 {
		t.Fatalf("only %d references found: the walk is broken", len(refs))
	}
	for _, r := range refs {
		if slices.Contains(pseudoParameters, r.Target) {
			continue
		}
		if _, ok := tpl.Parameters[r.Target]; ok {
			if r.Attr != "" {
				t.Errorf("%s: parameter %s has no attribute %s", r.Path, r.Target, r.Attr)
			}
			continue
		}
		res, ok := tpl.Resources[r.Target]
		if !ok {
			t.Errorf("%s: %s is neither a resource nor a parameter", r.Path, r.Target)
			continue
		}
		if r.Attr != "" && !slices.Contains(attributes[res.Type], r.Attr) {
			t.Errorf("%s: %s (%s) has no attribute %s", r.Path, r.Target, res.Type, r.Attr)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	param := func(name string) int {
		p, ok := tpl.Parameters[name]
		if !ok {
			t.Fatalf("no parameter %s", name)
		}
		n, err := tpl.Int(p.Default, nil)
		if err != nil {
			t.Fatalf("%s default: %v", name, err)
		}
		return n
	}
	if hb, to := param("JobHeartbeatSeconds"), param("JobTimeoutSeconds"); hb >= to {
		t.Errorf("JobHeartbeatSeconds %d is not below JobTimeoutSeconds %d: the heartbeat timeout would never fire", hb, to)
	}
	q, err := tpl.Queue("JobsQueue")
	if err != nil {
		t.Fatal(err)
	}
	if q.DeadLetterQueue != "JobsDeadLetterQueue" || q.MaxReceiveCount < 1 {
		t.Errorf("JobsQueue redrive = %+v, want JobsDeadLetterQueue after a few receives", q)
	}
	worker, err := tpl.Function("WorkerFunction")
	if err != nil {
		t.Fatal(err)
	}
	timeout, err := tpl.Int(worker.Timeout(), nil)
	if err != nil {
		t.Fatalf("worker Timeout: %v", err)
	}
	if q.VisibilityTimeout < 6*timeout {
		t.Errorf("JobsQueue VisibilityTimeout %d < 6 x worker Timeout %d", q.VisibilityTimeout, timeout)
	}
	// The rule must hold for every timeout the parameter allows, not only
	// the default.
	max := tpl.Parameters["WorkerTimeoutSeconds"].MaxValue
	if max == nil {
		t.Fatal("WorkerTimeoutSeconds has no MaxValue: a larger timeout would break the 6x visibility rule")
	}
	if float64(q.VisibilityTimeout) < 6**max || *max > 900 {
		t.Errorf("WorkerTimeoutSeconds MaxValue %g: must be at most Lambda's 900 s, and 6x it at most the visibility %d", *max, q.VisibilityTimeout)
	}
}

// Every route of internal/api is in the template, on the function meant to
// serve it, and the template routes nothing else.
func TestRoutesMatchTheAPI(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"POST /start-execution":           "StartFunction",
		"POST /describe-execution":        "DescribeFunction",
		"GET /executions/{id}":            "DescribeFunction",
		"GET /executions":                 "DescribeFunction",
		"POST /stop-execution":            "StopFunction",
		"DELETE /executions/{id}":         "StopFunction",
		"POST /executions/{id}/redeliver": "RedeliverFunction",
	}
	apiRoutes := map[string]bool{}
	for _, r := range api.Routes() {
		key := r.Method + " " + r.Path
		apiRoutes[key] = true
		if _, ok := want[key]; !ok {
			t.Errorf("internal/api serves %s, which this test does not assign to a function", key)
		}
	}
	routes, err := loadTemplate(t).Routes()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range routes {
		key := r.Method + " " + r.Path
		if prev, dup := got[key]; dup {
			t.Errorf("%s is routed twice (%s and %s)", key, prev, r.Function)
		}
		got[key] = r.Function
		if !apiRoutes[key] {
			t.Errorf("the template routes %s, which internal/api does not serve", key)
		}
	}
	for key := range apiRoutes {
		if got[key] != want[key] {
			t.Errorf("%s is routed to %q, want %s", key, got[key], want[key])
		}
	}
}

// Every function is built the same way and logs and traces the same way.
func TestFunctionsShape(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	fns := tpl.Functions()
	var ids []string
	for _, fn := range fns {
		ids = append(ids, fn.LogicalID)
	}
	if want := sortedKeys(functionDirs); !reflect.DeepEqual(ids, want) {
		t.Fatalf("functions = %v, want %v", ids, want)
	}
	for _, fn := range fns {
		t.Run(fn.LogicalID, func(t *testing.T) {
			t.Parallel()
			p := fn.Properties
			for prop, want := range map[string]any{
				"Runtime": "provided.al2023", "Handler": "bootstrap", "CodeUri": ".", "Tracing": "Active",
				"Architectures": []any{"arm64"},
			} {
				if !reflect.DeepEqual(p[prop], want) {
					t.Errorf("%s = %#v, want %#v", prop, p[prop], want)
				}
			}
			if fn.BuildMethod != "makefile" {
				t.Errorf("Metadata.BuildMethod = %q, want makefile", fn.BuildMethod)
			}
			lc, _ := p["LoggingConfig"].(map[string]any)
			if lc["LogFormat"] != "JSON" {
				t.Errorf("LoggingConfig.LogFormat = %v, want JSON", lc["LogFormat"])
			}
			ref, _ := lc["LogGroup"].(*template.Intrinsic)
			if ref == nil || ref.Fn != "Ref" {
				t.Fatalf("LoggingConfig.LogGroup = %#v, want !Ref to a log group of the stack", lc["LogGroup"])
			}
			lg := tpl.Resources[ref.Arg.(string)]
			if lg.Type != "AWS::Logs::LogGroup" || !reflect.DeepEqual(lg.Properties["RetentionInDays"], &template.Intrinsic{Fn: "Ref", Arg: "LogRetentionDays"}) {
				t.Errorf("log group %v = %+v, want an AWS::Logs::LogGroup with RetentionInDays !Ref LogRetentionDays", ref.Arg, lg)
			}
			dir := functionDirs[fn.LogicalID]
			if _, err := os.Stat(filepath.Join(root, "functions", dir, "main.go")); err != nil {
				t.Errorf("no main: %v", err)
			}
			// What `sam build` runs for this function: make build-<LogicalId>.
			dry := exec.Command("make", "-s", "-n", "build-"+fn.LogicalID, "ARTIFACTS_DIR=/artifacts", "GO=go")
			dry.Dir = root
			out, err := dry.CombinedOutput()
			want := `CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath -ldflags="-s -w" -o /artifacts/bootstrap ./functions/` + dir
			if err != nil || strings.TrimSpace(string(out)) != want {
				t.Errorf("make build-%s runs %q (%v), want the static, norpc, trimmed, stripped linux/arm64 build:\n%s", fn.LogicalID, out, err, want)
			}
		})
	}
}

// The table is the one internal/dynamostore creates and queries.
func TestTableMatchesTheStore(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	p := tpl.Resources["Table"].Properties
	want := dynamostore.TableInput("x")
	var attrs []any
	for _, a := range want.AttributeDefinitions {
		attrs = append(attrs, map[string]any{"AttributeName": aws.ToString(a.AttributeName), "AttributeType": string(a.AttributeType)})
	}
	keys := func(ks []struct{ n, t string }) []any {
		var out []any
		for _, k := range ks {
			out = append(out, map[string]any{"AttributeName": k.n, "KeyType": k.t})
		}
		return out
	}
	var tableKeys []struct{ n, t string }
	for _, k := range want.KeySchema {
		tableKeys = append(tableKeys, struct{ n, t string }{aws.ToString(k.AttributeName), string(k.KeyType)})
	}
	var gsis []any
	for _, gsi := range want.GlobalSecondaryIndexes {
		var indexKeys []struct{ n, t string }
		for _, k := range gsi.KeySchema {
			indexKeys = append(indexKeys, struct{ n, t string }{aws.ToString(k.AttributeName), string(k.KeyType)})
		}
		proj := map[string]any{"ProjectionType": string(gsi.Projection.ProjectionType)}
		if len(gsi.Projection.NonKeyAttributes) > 0 {
			proj["NonKeyAttributes"] = toAny(gsi.Projection.NonKeyAttributes)
		}
		gsis = append(gsis, map[string]any{"IndexName": aws.ToString(gsi.IndexName), "KeySchema": keys(indexKeys), "Projection": proj})
	}
	checks := map[string]any{
		"BillingMode":                      string(want.BillingMode),
		"AttributeDefinitions":             attrs,
		"KeySchema":                        keys(tableKeys),
		"GlobalSecondaryIndexes":           gsis,
		"TimeToLiveSpecification":          map[string]any{"AttributeName": dynamostore.DefaultTTLAttribute, "Enabled": true},
		"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
		"SSESpecification":                 map[string]any{"SSEEnabled": true},
	}
	for prop, want := range checks {
		if !reflect.DeepEqual(p[prop], want) {
			t.Errorf("Table %s =\n%#v\nwant\n%#v", prop, p[prop], want)
		}
	}
	if n := len(tpl.ResourcesOfType("AWS::DynamoDB::Table")); n != 1 {
		t.Errorf("%d tables, want one", n)
	}
}

func TestAlarms(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	want := map[string]string{
		"AWS/SQS ApproximateNumberOfMessagesVisible JobsDeadLetterQueue":         "",
		"AWS/States ExecutionsFailed LongrunStateMachine":                        "",
		"AWS/States ExecutionsTimedOut LongrunStateMachine":                      "",
		"AWS/SQS ApproximateNumberOfMessagesVisible NotifyFailuresQueue":         "",
		"AWS/SQS ApproximateNumberOfMessagesVisible StatusChangeDeadLetterQueue": "",
		"AWS/SQS ApproximateAgeOfOldestMessage JobsQueue":                        "",
		"AWS/Lambda Errors NotifyFunction":                                       "",
		"AWS/SQS ApproximateNumberOfMessagesVisible LongJobsDeadLetterQueue":     "",
		"AWS/SQS ApproximateAgeOfOldestMessage LongJobsQueue":                    "",
	}
	for _, id := range tpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		p := tpl.Resources[id].Properties
		dims, _ := p["Dimensions"].([]any)
		if len(dims) != 1 {
			t.Errorf("%s: %d dimensions, want 1", id, len(dims))
			continue
		}
		var target string
		switch v := dims[0].(map[string]any)["Value"].(type) {
		case *template.Intrinsic:
			if args, ok := v.Arg.([]any); ok {
				target = fmt.Sprint(args[0])
			} else {
				target = fmt.Sprint(v.Arg)
			}
		}
		key := fmt.Sprintf("%v %v %s", p["Namespace"], p["MetricName"], target)
		if _, ok := want[key]; !ok {
			t.Errorf("%s: unexpected alarm %s", id, key)
			continue
		}
		if strings.HasPrefix(key, "AWS/SQS ApproximateAgeOfOldestMessage ") {
			if ref, ok := p["Threshold"].(*template.Intrinsic); !ok || ref.Fn != "Ref" || ref.Arg != "JobsQueueAgeAlarmSeconds" {
				t.Errorf("%s: threshold %v, want the JobsQueueAgeAlarmSeconds parameter", id, p["Threshold"])
			}
		} else if p["ComparisonOperator"] != "GreaterThanThreshold" || p["Threshold"] != 0 {
			t.Errorf("%s: %v %v, want GreaterThanThreshold 0", id, p["ComparisonOperator"], p["Threshold"])
		}
		want[key] = id
	}
	for key, id := range want {
		if id == "" {
			t.Errorf("no alarm on %s", key)
		}
	}
}

// env.json only sets variables the template declares for the function:
// `sam local invoke` silently drops any other.
func TestEnvJSON(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	data, err := os.ReadFile(filepath.Join(root, "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]string
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("env.json: %v", err)
	}
	global := tpl.Globals["Function"]["Environment"].(map[string]any)["Variables"].(map[string]any)
	for name := range env["Parameters"] {
		if _, ok := global[name]; !ok {
			t.Errorf("env.json Parameters.%s is not declared in Globals: sam local would drop it", name)
		}
	}
	for id, vars := range env {
		if id == "Parameters" {
			continue
		}
		fn, err := tpl.Function(id)
		if err != nil {
			t.Errorf("env.json: %v", err)
			continue
		}
		declared := fn.Environment()
		for name := range vars {
			if _, ok := declared[name]; !ok {
				t.Errorf("env.json %s.%s is not declared for the function: sam local would drop it", id, name)
			}
		}
	}
	for id := range functionDirs {
		if _, ok := env[id]; !ok {
			t.Errorf("env.json has no entry for %s", id)
		}
	}
}

func awsQueue(name string) awstest.Queue {
	return awstest.Queue{Name: name, URL: "https://sqs.us-east-1.amazonaws.com/000000000000/" + name, ARN: "arn:aws:sqs:us-east-1:000000000000:" + name}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
