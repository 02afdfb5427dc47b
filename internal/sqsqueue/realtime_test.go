package sqsqueue_test

import (
	"context"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/sqsqueue"
)

// The suite's clock cases are skipped on SQS, which runs on real time. These
// are the same behaviours with 1–3 s timeouts: slower, but not skipped.

func setupQueue(t *testing.T) *sqsqueue.Queue {
	t.Helper()
	k := awstest.Kumo(t)
	return sqsqueue.New(k.SQS(), k.CreateQueue(t, awstest.UniqueName("realtime"), nil).URL)
}

// receiveWithin polls with wait 0 until a message is there or bound passes,
// and returns it with the time it first showed.
func receiveWithin(t *testing.T, q *sqsqueue.Queue, bound time.Duration) (longrun.Message, time.Time) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		msgs, err := q.Receive(context.Background(), 1, 0, 30*time.Second)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(msgs) == 1 {
			return msgs[0], time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no message within %s", bound)
	return longrun.Message{}, time.Time{}
}

func TestVisibleAgainAfterTimeoutRealTime(t *testing.T) {
	t.Parallel()
	q, ctx := setupQueue(t), context.Background()
	if err := q.Send(ctx, "comes-back"); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 1, 2*time.Second, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("first Receive = %v, %v; want the message", msgs, err)
	}
	first, received := msgs[0], time.Now()
	if msgs, err := q.Receive(ctx, 1, 0, 30*time.Second); err != nil || len(msgs) != 0 {
		t.Fatalf("while in flight: %v, %v; want nothing", msgs, err)
	}
	second, at := receiveWithin(t, q, 5*time.Second)
	if at.Sub(received) < 900*time.Millisecond {
		t.Errorf("visible again after %s, want about 1 s", at.Sub(received))
	}
	if second.ID != first.ID || second.Receipt == first.Receipt || second.ReceiveCount != 2 {
		t.Errorf("second receive = %+v, want id %s, a new receipt, count 2", second, first.ID)
	}
}

func TestChangeVisibilityExtendsRealTime(t *testing.T) {
	t.Parallel()
	q, ctx := setupQueue(t), context.Background()
	if err := q.Send(ctx, "long-job"); err != nil {
		t.Fatal(err)
	}
	m, _ := receiveWithin(t, q, 5*time.Second)
	if err := q.ChangeVisibility(ctx, m.Receipt, time.Second); err != nil {
		t.Fatal(err)
	}
	// A worker's heartbeat extends it before it lapses.
	if err := q.ChangeVisibility(ctx, m.Receipt, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	extended := time.Now()
	_, at := receiveWithin(t, q, 8*time.Second)
	if at.Sub(extended) < 2900*time.Millisecond {
		t.Errorf("visible again %s after extending to 3 s", at.Sub(extended))
	}
}
