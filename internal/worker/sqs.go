package worker

import (
	"context"
	"sync"

	"github.com/aws/aws-lambda-go/events"
)

// SQSHandler serves p to the Lambda worker (an SQS event source mapping with
// ReportBatchItemFailures). The records of a batch run concurrently, since
// each is a job that mostly waits; a record that is not done with is reported
// as a batch item failure so SQS delivers it again and the rest are deleted.
func SQSHandler(p *Processor) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var (
			mu  sync.Mutex
			res events.SQSEventResponse
			wg  sync.WaitGroup
		)
		for _, rec := range ev.Records {
			wg.Go(func() {
				log := p.log.With("message_id", rec.MessageId)
				if p.handleBody(ctx, rec.Body, log) {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
			})
		}
		wg.Wait()
		return res, nil
	}
}
