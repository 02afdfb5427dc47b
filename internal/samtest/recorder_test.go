package samtest_test

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/longrun/longrun/internal/awstest"
)

// call is one AWS request as IAM authorizes it: an action on a resource.
type call struct {
	Action   string // dynamodb:GetItem
	Resource string // an ARN
}

func (c call) String() string { return c.Action + " on " + c.Resource }

// recorder is smithy middleware that records every request an SDK client
// makes, whether or not it succeeds (IAM is checked before either).
type recorder struct {
	mu    sync.Mutex
	calls map[call]int
	// queueARN maps a queue URL to its ARN; taskTokens is the ARN of the
	// state machine that issued the task tokens the worker completes
	// (IAM authorizes SendTask* against it).
	queueARN   func(url string) string
	taskTokens string
}

func newRecorder(queueARN func(string) string, taskTokens string) *recorder {
	return &recorder{calls: map[call]int{}, queueARN: queueARN, taskTokens: taskTokens}
}

// config returns cfg with the recorder in every client's stack.
func (r *recorder) config(cfg aws.Config) aws.Config {
	cfg.APIOptions = append(cfg.APIOptions[:len(cfg.APIOptions):len(cfg.APIOptions)], func(stack *middleware.Stack) error {
		return stack.Serialize.Add(middleware.SerializeMiddlewareFunc("samtest.record",
			func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
				r.record(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx), in.Parameters)
				return next.HandleSerialize(ctx, in)
			}), middleware.Before)
	})
	return cfg
}

func tableARN(name *string) string {
	return "arn:aws:dynamodb:" + awstest.Region + ":" + awstest.AccountID + ":table/" + aws.ToString(name)
}

// add records c as if a client had made it.
func (r *recorder) add(c call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[c]++
}

func (r *recorder) record(service, operation string, params any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	add := func(action, resource string) { r.calls[call{action, resource}]++ }
	switch in := params.(type) {
	// DynamoDB authorizes each item of a transaction as its own action.
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range in.TransactItems {
			switch {
			case it.Put != nil:
				add("dynamodb:PutItem", tableARN(it.Put.TableName))
			case it.Update != nil:
				add("dynamodb:UpdateItem", tableARN(it.Update.TableName))
			case it.Delete != nil:
				add("dynamodb:DeleteItem", tableARN(it.Delete.TableName))
			case it.ConditionCheck != nil:
				add("dynamodb:ConditionCheckItem", tableARN(it.ConditionCheck.TableName))
			}
		}
	case *dynamodb.GetItemInput:
		add("dynamodb:GetItem", tableARN(in.TableName))
	case *dynamodb.PutItemInput:
		add("dynamodb:PutItem", tableARN(in.TableName))
	case *dynamodb.UpdateItemInput:
		add("dynamodb:UpdateItem", tableARN(in.TableName))
	case *dynamodb.DeleteItemInput:
		add("dynamodb:DeleteItem", tableARN(in.TableName))
	case *dynamodb.QueryInput:
		res := tableARN(in.TableName)
		if in.IndexName != nil {
			res += "/index/" + *in.IndexName
		}
		add("dynamodb:Query", res)
	case *sfn.StartExecutionInput:
		add("states:StartExecution", aws.ToString(in.StateMachineArn))
	case *sfn.StopExecutionInput:
		add("states:StopExecution", aws.ToString(in.ExecutionArn))
	case *sfn.DescribeExecutionInput:
		add("states:DescribeExecution", aws.ToString(in.ExecutionArn))
	case *sfn.SendTaskSuccessInput, *sfn.SendTaskFailureInput, *sfn.SendTaskHeartbeatInput:
		add("states:"+operation, r.taskTokens)
	case *sqs.SendMessageInput:
		add("sqs:SendMessage", r.queueARN(aws.ToString(in.QueueUrl)))
	case *sqs.ReceiveMessageInput:
		add("sqs:ReceiveMessage", r.queueARN(aws.ToString(in.QueueUrl)))
	case *sqs.DeleteMessageInput:
		add("sqs:DeleteMessage", r.queueARN(aws.ToString(in.QueueUrl)))
	case *sqs.ChangeMessageVisibilityInput:
		add("sqs:ChangeMessageVisibility", r.queueARN(aws.ToString(in.QueueUrl)))
	default:
		// An operation this table does not know yet: recorded with no
		// resource, so the comparison fails and names it.
		add(iamPrefix(service)+":"+operation, "unknown resource of "+fmt.Sprintf("%T", params))
	}
}

func iamPrefix(service string) string {
	switch service {
	case "SFN":
		return "states"
	}
	return strings.ToLower(service)
}

// recorded returns the calls made, sorted.
func (r *recorder) recorded() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]call, 0, len(r.calls))
	for c := range r.calls {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// grant is one action on one resource pattern of a role.
type grant struct {
	Sid      string
	Action   string
	Resource string // IAM pattern: * and ? are wildcards
}

func (g grant) allows(c call) bool {
	if g.Action != c.Action {
		return false
	}
	pattern := "^" + strings.ReplaceAll(strings.ReplaceAll(regexp.QuoteMeta(g.Resource), `\*`, ".*"), `\?`, ".") + "$"
	return regexp.MustCompile(pattern).MatchString(c.Resource)
}
