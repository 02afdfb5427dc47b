package awstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Queue is an SQS queue in an emulator.
type Queue struct {
	Name string
	URL  string
	ARN  string
}

// CreateQueue creates an SQS queue with attributes (e.g. "RedrivePolicy",
// "VisibilityTimeout"; nil for the defaults) and deletes it when t ends.
func (k *KumoServer) CreateQueue(t testing.TB, name string, attributes map[string]string) Queue {
	t.Helper()
	return createQueue(t, k.SQS(), name, attributes)
}

func createQueue(t testing.TB, client *sqs.Client, name string, attributes map[string]string) Queue {
	t.Helper()
	ctx := context.Background()
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attributes})
	if err != nil {
		t.Fatalf("awstest: create queue %s: %v", name, err)
	}
	url := aws.ToString(out.QueueUrl)
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("awstest: get attributes of queue %s: %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	})
	return Queue{Name: name, URL: url, ARN: attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]}
}

// CreateStateMachine creates a STANDARD state machine and returns its ARN;
// it is deleted when t ends.
func (k *KumoServer) CreateStateMachine(t testing.TB, name, definition string) string {
	t.Helper()
	return createStateMachine(t, k.SFN(), name, definition)
}

func createStateMachine(t testing.TB, client *sfn.Client, name, definition string) string {
	t.Helper()
	out, err := client.CreateStateMachine(context.Background(), &sfn.CreateStateMachineInput{
		Name:       aws.String(name),
		Definition: aws.String(definition),
		RoleArn:    aws.String("arn:aws:iam::" + AccountID + ":role/longrun-test"),
		Type:       sfntypes.StateMachineTypeStandard,
	})
	if err != nil {
		t.Fatalf("awstest: create state machine %s: %v", name, err)
	}
	arn := aws.ToString(out.StateMachineArn)
	t.Cleanup(func() {
		_, _ = client.DeleteStateMachine(context.Background(), &sfn.DeleteStateMachineInput{StateMachineArn: aws.String(arn)})
	})
	return arn
}

// CreateFunction creates a Lambda function record in kumo and returns its
// ARN. Nothing answers its invocations until something polls the Runtime
// API for it: use ServeFunction for that.
func (k *KumoServer) CreateFunction(t testing.TB, name string, timeout time.Duration) string {
	t.Helper()
	// The AWS SDK's Lambda client is not a dependency of longrun; this one
	// REST call is simpler than adding it.
	body, _ := json.Marshal(map[string]any{
		"FunctionName": name,
		"Runtime":      "provided.al2023",
		"Handler":      "bootstrap",
		"Role":         "arn:aws:iam::" + AccountID + ":role/longrun-test",
		"Code":         map[string]any{"ZipFile": []byte("kumo runs no code; awstest answers through the Runtime API")},
		"Timeout":      int(timeout / time.Second),
	})
	resp, err := k.lambdaRequest(context.Background(), http.MethodPost, "/2015-03-31/functions", body)
	if err != nil {
		t.Fatalf("awstest: create function %s: %v", name, err)
	}
	var out struct{ FunctionArn string }
	if err := json.Unmarshal(resp, &out); err != nil || out.FunctionArn == "" {
		t.Fatalf("awstest: create function %s: unexpected answer %s (%v)", name, resp, err)
	}
	return out.FunctionArn
}

// lambdaRequest sends one Lambda REST API request to kumo, which routes
// Lambda calls by the SigV4 credential scope, and returns the body of a 2xx.
func (k *KumoServer) lambdaRequest(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	return serviceRequest(ctx, k.URL, "lambda", method, path, "application/json", body)
}

// serviceRequest sends one request for service to an emulator at base URL
// (the AWS SDK's Lambda and IAM clients are not dependencies of longrun;
// these few calls are simpler). Both emulators route by the SigV4 credential
// scope and check no signature. It returns the body of a 2xx.
func serviceRequest(ctx context.Context, base, service, method, path, contentType string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/"+Region+"/"+service+"/aws4_request, SignedHeaders=host, Signature=test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return b, nil
}
