package awstest_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/longrun/longrun/internal/awstest"
)

// definition sends the input to a queue, then has a Lambda function greet it.
const definition = `{
  "StartAt": "Send",
  "States": {
    "Send": {
      "Type": "Task",
      "Resource": "arn:aws:states:::sqs:sendMessage",
      "Parameters": {"QueueUrl": "${QueueUrl}", "MessageBody.$": "$"},
      "ResultPath": null,
      "Next": "Greet"
    },
    "Greet": {
      "Type": "Task",
      "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "${FunctionArn}", "Payload": {"name.$": "$.name"}},
      "OutputPath": "$.Payload",
      "End": true
    }
  }
}`

type greeting struct {
	Hello     string `json:"hello"`
	RequestID string `json:"requestId"`
}

func TestStateMachineReachesQueueAndFunction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := awstest.Kumo(t)
	k.ServeIntegrations(t)

	q := k.CreateQueue(t, awstest.UniqueName("awstest"), nil)
	fn := k.ServeFunction(t, awstest.UniqueName("greet"), 5*time.Second, lambda.NewHandler(
		func(ctx context.Context, in struct{ Name string }) (greeting, error) {
			lc, _ := lambdacontext.FromContext(ctx)
			if _, ok := ctx.Deadline(); !ok {
				return greeting{}, errors.New("no deadline")
			}
			return greeting{Hello: in.Name, RequestID: lc.AwsRequestID}, nil
		}))
	def := awstest.Substitute(definition, map[string]string{"QueueUrl": q.URL, "FunctionArn": fn.ARN})
	sm := k.CreateStateMachine(t, awstest.UniqueName("awstest"), def)

	client := k.SFN()
	start, err := client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(sm), Input: aws.String(`{"name":"ramen"}`)})
	if err != nil {
		t.Fatalf("start execution: %v", err)
	}
	out := awaitExecution(t, client, aws.ToString(start.ExecutionArn))
	if out.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s: %s: %s", out.Status, aws.ToString(out.Error), aws.ToString(out.Cause))
	}
	var g greeting
	if err := json.Unmarshal([]byte(aws.ToString(out.Output)), &g); err != nil {
		t.Fatalf("output %s: %v", aws.ToString(out.Output), err)
	}
	if g.Hello != "ramen" || g.RequestID == "" {
		t.Errorf("output = %+v, want hello ramen with a request id", g)
	}

	msgs, err := k.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), WaitTimeSeconds: 1})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(msgs.Messages) != 1 || !strings.Contains(aws.ToString(msgs.Messages[0].Body), `"ramen"`) {
		t.Errorf("queue got %+v, want the execution input", msgs.Messages)
	}
}

func TestFunctionErrorReachesInvoker(t *testing.T) {
	t.Parallel()
	k := awstest.Kumo(t)
	k.ServeIntegrations(t)
	fn := k.ServeFunction(t, awstest.UniqueName("fail"), 5*time.Second, lambda.NewHandler(
		func(context.Context, json.RawMessage) (string, error) { return "", errors.New("boom") }))
	sm := k.CreateStateMachine(t, awstest.UniqueName("awstest"), `{"StartAt":"F","States":{"F":{"Type":"Task",
		"Resource":"arn:aws:lambda:us-east-1:000000000000:function:`+fn.Name+`","End":true}}}`)
	client := k.SFN()
	start, err := client.StartExecution(context.Background(), &sfn.StartExecutionInput{StateMachineArn: aws.String(sm), Input: aws.String(`{}`)})
	if err != nil {
		t.Fatalf("start execution: %v", err)
	}
	out := awaitExecution(t, client, aws.ToString(start.ExecutionArn))
	// kumo returns the function's error payload as its result instead of
	// failing the task (AWS fails it with the errorType as error name).
	t.Logf("kumo: function error gives %s output=%s error=%s", out.Status, aws.ToString(out.Output), aws.ToString(out.Error))
	if !strings.Contains(aws.ToString(out.Output)+aws.ToString(out.Cause), "boom") {
		t.Errorf("the handler's error did not reach the execution: %+v", out)
	}
}

func TestSubstitute(t *testing.T) {
	t.Parallel()
	got := awstest.Substitute(`{"a":"${A}","b":"${B}","c":"${C}"}`, map[string]string{"A": "1", "B": "two"})
	if want := `{"a":"1","b":"two","c":"${C}"}`; got != want {
		t.Errorf("Substitute = %s, want %s", got, want)
	}
}

func TestMinidynIsFreshPerCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := awstest.Minidyn(t), awstest.Minidyn(t)
	_, err := a.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("t"),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: ddbtypes.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	if _, err := a.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("t")}); err != nil {
		t.Fatalf("describe the table just created: %v", err)
	}
	if _, err := b.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("t")}); err == nil {
		t.Fatal("a second Minidyn sees the first one's table")
	}
}

// awaitExecution polls until the execution has ended, for at most 20 s.
func awaitExecution(t *testing.T, client *sfn.Client, arn string) *sfn.DescribeExecutionOutput {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := client.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			t.Fatalf("describe %s: %v", arn, err)
		}
		if out.Status != sfntypes.ExecutionStatusRunning {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s still RUNNING after 20s", arn)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFixHeartbeatPath(t *testing.T) {
	t.Parallel()
	got, err := awstest.FixHeartbeatPath(`{"StartAt":"Work","States":{"Work":{"Type":"Task","HeartbeatSecondsPath":"$.limits.heartbeatSeconds","TimeoutSecondsPath":"$.t","End":true}}}`, 30)
	if err != nil {
		t.Fatal(err)
	}
	var def struct{ States map[string]map[string]any }
	if err := json.Unmarshal([]byte(got), &def); err != nil {
		t.Fatal(err)
	}
	w := def.States["Work"]
	if _, ok := w["HeartbeatSecondsPath"]; ok || w["HeartbeatSeconds"] != float64(30) || w["TimeoutSecondsPath"] != "$.t" {
		t.Errorf("Work = %v, want HeartbeatSeconds 30 instead of the path and everything else kept", w)
	}
}

func TestFixHeartbeatPathGivesCallbackTasksAHeartbeat(t *testing.T) {
	t.Parallel()
	got, err := awstest.FixHeartbeatPath(`{"StartAt":"Work","States":{
		"Work":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken","Next":"Notify"},
		"Kept":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken","HeartbeatSeconds":7,"Next":"Notify"},
		"Notify":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","End":true}}}`, 3600)
	if err != nil {
		t.Fatal(err)
	}
	var def struct{ States map[string]map[string]any }
	if err := json.Unmarshal([]byte(got), &def); err != nil {
		t.Fatal(err)
	}
	for state, want := range map[string]any{"Work": float64(3600), "Kept": float64(7), "Notify": nil} {
		if got := def.States[state]["HeartbeatSeconds"]; got != want {
			t.Errorf("%s: HeartbeatSeconds %v, want %v", state, got, want)
		}
	}
}
