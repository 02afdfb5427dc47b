package sqsqueue_test

import (
	"fmt"
	"testing"

	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/queuetest"
	"github.com/longrun/longrun/internal/sqsqueue"
)

func TestConformanceKumo(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T, cfg queuetest.Config) queuetest.Harness {
		k := awstest.Kumo(t)
		client := k.SQS()
		var h queuetest.Harness
		var attrs map[string]string
		if cfg.MaxReceiveCount > 0 {
			dlq := k.CreateQueue(t, awstest.UniqueName("dlq"), nil)
			h.DeadLetter = sqsqueue.New(client, dlq.URL)
			attrs = map[string]string{"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, dlq.ARN, cfg.MaxReceiveCount)}
		}
		q := k.CreateQueue(t, awstest.UniqueName("jobs"), attrs)
		h.Queue = sqsqueue.New(client, q.URL)
		return h
	})
}

// TestConformanceMoto runs the queue suite on moto's SQS, a second
// emulator beside kumo.
func TestConformanceMoto(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T, cfg queuetest.Config) queuetest.Harness {
		m := awstest.Moto(t)
		client := m.SQS()
		var h queuetest.Harness
		var attrs map[string]string
		if cfg.MaxReceiveCount > 0 {
			dlq := m.CreateQueue(t, awstest.UniqueName("dlq"), nil)
			h.DeadLetter = sqsqueue.New(client, dlq.URL)
			attrs = map[string]string{"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, dlq.ARN, cfg.MaxReceiveCount)}
		}
		q := m.CreateQueue(t, awstest.UniqueName("jobs"), attrs)
		h.Queue = sqsqueue.New(client, q.URL)
		h.StaleDeleteDeletes = true // docs/emulators.md
		return h
	})
}
