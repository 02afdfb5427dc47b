package sqsqueue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/longrun/longrun"
)

// recorder is an API that records the last ReceiveMessage and
// ChangeMessageVisibility requests and answers with one fixed message.
type recorder struct {
	API
	receive   *sqs.ReceiveMessageInput
	change    *sqs.ChangeMessageVisibilityInput
	changeErr error
}

func (r *recorder) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	r.receive = in
	return &sqs.ReceiveMessageOutput{Messages: []types.Message{{
		MessageId:     aws.String("5fea7756-0ea4-451a-a703-a558b933e274"),
		ReceiptHandle: aws.String("AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a"),
		Body:          aws.String(`{"taskToken":"t"}`),
		Attributes:    map[string]string{"ApproximateReceiveCount": "3", "SentTimestamp": "1764061200123"},
	}}}, nil
}

func (r *recorder) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	r.change = in
	return &sqs.ChangeMessageVisibilityOutput{}, r.changeErr
}

// A receipt that no longer holds its message is ENOTFOUND, as the port
// says, so a worker extending its visibility learns it lost the message.
func TestChangeVisibilityOfALostMessage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		code string
	}{
		{&types.MessageNotInflight{Message: aws.String("Message does not exist or is not available for visibility timeout change.")}, longrun.ENOTFOUND},
		{&types.ReceiptHandleIsInvalid{Message: aws.String("The input receipt handle is invalid.")}, longrun.ENOTFOUND},
		{errors.New("dial tcp: connection refused"), longrun.EINTERNAL},
	} {
		q := New(&recorder{changeErr: tt.err}, "https://sqs.us-east-1.amazonaws.com/123456789012/jobs")
		err := q.ChangeVisibility(context.Background(), "receipt", time.Minute)
		if longrun.ErrorCode(err) != tt.code {
			t.Errorf("%T: code %q, want %q (%v)", tt.err, longrun.ErrorCode(err), tt.code, err)
		}
	}
}

func TestReceiveStaysWithinSQSLimits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name                string
		n                   int
		wait, visibility    time.Duration
		wantN, wantW, wantV int32
	}{
		{"plain", 5, 2 * time.Second, 30 * time.Second, 5, 2, 30},
		{"over SQS maxima", 50, time.Minute, 13 * time.Hour, 10, 20, 43200},
		{"fractions round up", 1, 1500 * time.Millisecond, 100 * time.Millisecond, 1, 2, 1},
		{"zero and below", 0, 0, 0, 1, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{}
			msgs, err := New(r, "https://sqs.us-east-1.amazonaws.com/123456789012/jobs").Receive(context.Background(), c.n, c.wait, c.visibility)
			if err != nil {
				t.Fatalf("Receive: %v", err)
			}
			in := r.receive
			if in.MaxNumberOfMessages != c.wantN || in.WaitTimeSeconds != c.wantW || in.VisibilityTimeout != c.wantV {
				t.Errorf("request max %d wait %d visibility %d, want %d %d %d",
					in.MaxNumberOfMessages, in.WaitTimeSeconds, in.VisibilityTimeout, c.wantN, c.wantW, c.wantV)
			}
			if len(in.MessageSystemAttributeNames) != 2 {
				t.Errorf("system attributes asked = %v, want receive count and sent time", in.MessageSystemAttributeNames)
			}
			m := msgs[0]
			if m.ReceiveCount != 3 || !m.SentAt.Equal(time.UnixMilli(1764061200123)) || m.Receipt == "" || m.ID == "" {
				t.Errorf("message = %+v, want count 3, sent at 1764061200123 ms, receipt and id", m)
			}
		})
	}
}

func TestChangeVisibilityCapped(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	if err := New(r, "q").ChangeVisibility(context.Background(), "rh", 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := r.change.VisibilityTimeout; got != 43200 {
		t.Errorf("VisibilityTimeout = %d, want SQS's maximum 43200", got)
	}
}
