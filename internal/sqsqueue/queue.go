// Package sqsqueue is longrun.Queue on Amazon SQS: the jobs queue that the
// state machine's Work state fills (sqs:sendMessage.waitForTaskToken) and
// `longrun worker` drains.
//
// The dead-letter queue is not this package's business: it is configured on
// the queue itself (RedrivePolicy with maxReceiveCount in template.yaml), and
// SQS moves a message there on the receive after its maxReceiveCount-th.
//
// Two SQS limits show through the port:
//
//   - Receive waits at most 20 s per call (SQS's WaitTimeSeconds limit) and
//     rounds wait up to whole seconds. A wait of 0 sends no WaitTimeSeconds
//     (the SDK omits zero), so the queue's ReceiveMessageWaitTimeSeconds
//     applies: keep it at 0 for queues read with wait 0.
//   - Likewise a visibility of 0 sends no VisibilityTimeout, so the queue's
//     own visibility timeout applies; ChangeVisibility(0) does release a
//     message at once.
package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/longrun/longrun"
)

// SQS's own bounds.
const (
	maxWait          = 20 * time.Second
	maxVisibility    = 12 * time.Hour
	maxReceiveBatch  = 10
	attrReceiveCount = types.MessageSystemAttributeNameApproximateReceiveCount
	attrSentAt       = types.MessageSystemAttributeNameSentTimestamp
)

// API is the part of the SQS client the queue uses. *sqs.Client implements it.
type API interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Queue is one SQS queue.
type Queue struct {
	client API
	url    *string
}

var _ longrun.Queue = (*Queue)(nil)

// New returns the queue at queueURL.
func New(client API, queueURL string) *Queue {
	return &Queue{client: client, url: aws.String(queueURL)}
}

// Send puts body on the queue.
func (q *Queue) Send(ctx context.Context, body string) error {
	if _, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.url, MessageBody: aws.String(body)}); err != nil {
		return fmt.Errorf("send to %s: %w", *q.url, err)
	}
	return nil
}

// Receive long-polls for up to wait (at most 20 s) and returns at most n
// (at most 10) messages, each invisible for visibility.
func (q *Queue) Receive(ctx context.Context, n int, wait, visibility time.Duration) ([]longrun.Message, error) {
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    q.url,
		MaxNumberOfMessages:         int32(min(max(n, 1), maxReceiveBatch)),
		WaitTimeSeconds:             seconds(min(wait, maxWait)),
		VisibilityTimeout:           seconds(min(visibility, maxVisibility)),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{attrReceiveCount, attrSentAt},
	})
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", *q.url, err)
	}
	msgs := make([]longrun.Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msg := longrun.Message{ID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), Receipt: aws.ToString(m.ReceiptHandle)}
		if n, err := strconv.Atoi(m.Attributes[string(attrReceiveCount)]); err == nil {
			msg.ReceiveCount = n
		}
		if ms, err := strconv.ParseInt(m.Attributes[string(attrSentAt)], 10, 64); err == nil {
			msg.SentAt = time.UnixMilli(ms).UTC()
		}
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

// Delete deletes the message received with receipt. SQS answers success for
// a receipt that is stale (the message was received again since), and the
// message stays.
func (q *Queue) Delete(ctx context.Context, receipt string) error {
	if _, err := q.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.url, ReceiptHandle: aws.String(receipt)}); err != nil {
		return fmt.Errorf("delete from %s: %w", *q.url, err)
	}
	return nil
}

// ChangeVisibility makes the message received with receipt invisible for
// visibility from now (0: visible at once).
func (q *Queue) ChangeVisibility(ctx context.Context, receipt string, visibility time.Duration) error {
	_, err := q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          q.url,
		ReceiptHandle:     aws.String(receipt),
		VisibilityTimeout: seconds(min(visibility, maxVisibility)),
	})
	var notInFlight *types.MessageNotInflight
	var invalid *types.ReceiptHandleIsInvalid
	switch {
	case errors.As(err, &notInFlight), errors.As(err, &invalid):
		// The message was deleted or received again: this receipt no longer
		// holds it, which the worker must hear as such (longrun.Queue).
		return fmt.Errorf("change visibility on %s: %w", *q.url, longrun.Errorf(longrun.ENOTFOUND, "the message is no longer held by this receipt: %v", err))
	case err != nil:
		return fmt.Errorf("change visibility on %s: %w", *q.url, err)
	}
	return nil
}

// seconds rounds d up to whole seconds, as SQS counts them.
func seconds(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	return int32((d + time.Second - 1) / time.Second)
}
