package samtest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/dynamostore"
	"github.com/longrun/longrun/internal/template"
)

// root is the repository root, where template.yaml, statemachine/ and
// events/ are.
var root = filepath.Join("..", "..")

func loadTemplate(t *testing.T) *template.Template {
	t.Helper()
	tpl, err := template.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatalf("load template: %v", err)
	}
	return tpl
}

// deployment is the template's stateful resources created in an emulator
// (kumo for newFixture, either for newFixtureOn), under a unique stack name, with a
// resolver that answers the template's !Ref and !GetAtt the way
// CloudFormation would for that stack.
type deployment struct {
	emu       awstest.Emulator
	kumo      *awstest.KumoServer // nil unless emu is kumo
	tpl       *template.Template
	stack     string
	table     string
	jobs      awstest.Queue
	dlq       awstest.Queue
	long      awstest.Queue // LongJobsQueue
	longDLQ   awstest.Queue
	longrun   string // state machine ARNs
	deliver   string
	notifyARN string // the NotifyFunction's ARN; a placeholder unless set
}

// stateMachineDefs are the definitions deployed for the two state machines;
// "" means the real statemachine/*.asl.json.
type stateMachineDefs struct{ longrun, deliver string }

// passDefinition stands in for the deliver state machine where only its
// start matters.
const passDefinition = `{"StartAt":"Done","States":{"Done":{"Type":"Pass","End":true}}}`

// deployOn creates the deployment on the emulator k.
func deployOn(t *testing.T, k awstest.Emulator, defs stateMachineDefs, notifyARN string) *deployment {
	t.Helper()
	d := &deployment{emu: k, tpl: loadTemplate(t), stack: awstest.UniqueName("lr"), notifyARN: notifyARN}
	d.kumo, _ = k.(*awstest.KumoServer)
	if d.notifyARN == "" {
		d.notifyARN = "arn:aws:lambda:" + awstest.Region + ":" + awstest.AccountID + ":function:" + d.stack + "-notify"
	}
	d.table = d.stack + "-table"
	if err := dynamostore.CreateTable(context.Background(), k.DynamoDB(), d.table, ""); err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() {
		_, _ = k.DynamoDB().DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(d.table)})
	})
	q, err := d.tpl.Queue("JobsQueue")
	if err != nil {
		t.Fatal(err)
	}
	d.dlq = k.CreateQueue(t, d.stack+"-dlq", nil)
	d.jobs = k.CreateQueue(t, d.stack+"-jobs", map[string]string{
		"VisibilityTimeout": fmt.Sprint(q.VisibilityTimeout),
		"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, d.dlq.ARN, q.MaxReceiveCount),
	})
	lq, err := d.tpl.Queue("LongJobsQueue")
	if err != nil {
		t.Fatal(err)
	}
	d.longDLQ = k.CreateQueue(t, d.stack+"-long-dlq", nil)
	d.long = k.CreateQueue(t, d.stack+"-long", map[string]string{
		"VisibilityTimeout": fmt.Sprint(lq.VisibilityTimeout),
		"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, d.longDLQ.ARN, lq.MaxReceiveCount),
	})
	// The deliver state machine's name is the template's, because notify
	// builds its ARN from it rather than through !Ref.
	d.longrun = k.CreateStateMachine(t, d.stack+"-longrun", d.definition(t, "LongrunStateMachine", defs.longrun))
	d.deliver = k.CreateStateMachine(t, d.stack+"-deliver", d.definition(t, "DeliverStateMachine", defs.deliver))
	return d
}

// definition is the state machine's definition as deployed on the
// emulator: the template's, after its DefinitionSubstitutions for this
// deployment, with the emulator's gaps filled (kumo's HeartbeatSecondsPath:
// see awstest.FixHeartbeatPath).
func (d *deployment) definition(t *testing.T, id, override string) string {
	t.Helper()
	if override != "" {
		return override
	}
	// kumo panics on a heartbeat for a task without HeartbeatSeconds, which
	// Work has none of (a worker's lease is its liveness check): the job
	// timeout stands in, so that queue time cannot time a task out here
	// either.
	hb, err := d.tpl.Int(&template.Intrinsic{Fn: "Ref", Arg: "JobTimeoutSeconds"}, d.resolve)
	if err != nil {
		t.Fatal(err)
	}
	adapt := awstest.FixHeartbeatPath // fakeDeployment, with no emulator: as deployed on kumo
	if d.emu != nil {
		adapt = d.emu.AdaptDefinition
	}
	def, err := adapt(d.substituted(t, id), hb)
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// substituted is the state machine's definition after the template's
// DefinitionSubstitutions for this deployment, as CloudFormation makes it.
func (d *deployment) substituted(t *testing.T, id string) string {
	t.Helper()
	sm, err := d.tpl.StateMachine(id)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := d.tpl.Definition(sm)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := d.tpl.Substitutions(sm, d.resolve)
	if err != nil {
		t.Fatal(err)
	}
	return awstest.Substitute(string(raw), subs)
}

// resolve answers !Ref and !GetAtt for this deployment, as CloudFormation
// would: only the resources whose values a function or state machine can
// see are known.
func (d *deployment) resolve(name, attr string) (string, error) {
	arnPrefix := "arn:aws:%s:" + awstest.Region + ":" + awstest.AccountID + ":"
	key := name
	if attr != "" {
		key += "." + attr
	}
	switch key {
	case "AWS::Region":
		return awstest.Region, nil
	case "AWS::AccountId":
		return awstest.AccountID, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::StackName":
		return d.stack, nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "Table":
		return d.table, nil
	case "Table.Arn":
		return fmt.Sprintf(arnPrefix, "dynamodb") + "table/" + d.table, nil
	case "JobsQueue":
		return d.jobs.URL, nil
	case "JobsQueue.Arn":
		return d.jobs.ARN, nil
	case "JobsQueue.QueueName":
		return d.jobs.Name, nil
	case "JobsDeadLetterQueue":
		return d.dlq.URL, nil
	case "JobsDeadLetterQueue.Arn":
		return d.dlq.ARN, nil
	case "JobsDeadLetterQueue.QueueName":
		return d.dlq.Name, nil
	case "LongJobsQueue":
		return d.long.URL, nil
	case "LongJobsQueue.Arn":
		return d.long.ARN, nil
	case "LongJobsQueue.QueueName":
		return d.long.Name, nil
	case "LongJobsDeadLetterQueue":
		return d.longDLQ.URL, nil
	case "LongJobsDeadLetterQueue.Arn":
		return d.longDLQ.ARN, nil
	case "LongJobsDeadLetterQueue.QueueName":
		return d.longDLQ.Name, nil
	case "LongrunStateMachine", "LongrunStateMachine.Arn":
		return d.longrun, nil
	case "LongrunStateMachine.Name":
		return d.longrun[strings.LastIndex(d.longrun, ":")+1:], nil
	case "DeliverStateMachine", "DeliverStateMachine.Arn":
		return d.deliver, nil
	case "DeliverStateMachine.Name":
		return d.deliver[strings.LastIndex(d.deliver, ":")+1:], nil
	case "NotifyFunction.Arn":
		return d.notifyARN, nil
	}
	if res, ok := d.tpl.Resources[name]; ok && res.Type == "AWS::Logs::LogGroup" && attr == "Arn" {
		group, err := d.tpl.String(res.Properties["LogGroupName"], d.resolve)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf(arnPrefix, "logs") + "log-group:" + group + ":*", nil
	}
	return "", fmt.Errorf("the test deployment has no value for %s", key)
}

// env is the function's environment as the template sets it for this
// deployment: what awsapp.ConfigFromEnv reads on AWS.
func (d *deployment) env(t *testing.T, function string) map[string]string {
	t.Helper()
	fn, err := d.tpl.Function(function)
	if err != nil {
		t.Fatal(err)
	}
	v, err := d.tpl.Eval(fn.Environment(), d.resolve)
	if err != nil {
		t.Fatalf("%s environment: %v", function, err)
	}
	out := map[string]string{}
	for k, val := range v.(map[string]any) {
		out[k] = fmt.Sprint(val)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
