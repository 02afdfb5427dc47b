package sqsqueue_test

import (
	"fmt"
	"testing"

	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/queuetest"
	"github.com/longrun/longrun/internal/sqsqueue"
)

// TestConformance runs the queue suite on the SQS of kumo and of moto.
func TestConformance(t *testing.T) {
	t.Parallel()
	awstest.OnEach(t, func(t *testing.T, emu awstest.Emulator) {
		queuetest.Run(t, func(t *testing.T, cfg queuetest.Config) queuetest.Harness {
			client := emu.SQS()
			var h queuetest.Harness
			var attrs map[string]string
			if cfg.MaxReceiveCount > 0 {
				dlq := emu.CreateQueue(t, awstest.UniqueName("dlq"), nil)
				h.DeadLetter = sqsqueue.New(client, dlq.URL)
				attrs = map[string]string{"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, dlq.ARN, cfg.MaxReceiveCount)}
			}
			q := emu.CreateQueue(t, awstest.UniqueName("jobs"), attrs)
			h.Queue = sqsqueue.New(client, q.URL)
			h.StaleDeleteDeletes = emu.Name() == "moto" // docs/emulators.md
			return h
		})
	})
}
