package worker

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// LambdaMargin is the time before a Lambda invocation's deadline that a
// running job is given up, so its failure can still be reported.
const LambdaMargin = 10 * time.Second

// SQSHandler serves p to the Lambda worker (an SQS event source mapping with
// ReportBatchItemFailures). The records of a batch run concurrently, since
// each is a job that mostly waits; a record that is not done with is reported
// as a batch item failure so SQS delivers it again and the rest are deleted.
//
// A job still running LambdaMargin before the invocation's deadline is
// cancelled and failed with ErrNameOutOfTime, in the time that is left:
// Lambda would kill it anyway, and a retry would only run out of time again.
func SQSHandler(p *Processor) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return LeasedSQSHandler(p, nil, 0)
}

// LeasedSQSHandler is SQSHandler that also holds each record's message as
// its job's lease (see Leaser): on receipt the message's visibility is cut
// from the queue's (at least the function timeout, which Lambda requires of
// an event source) to lease, and renewed every lease/3 while the job runs.
// A worker that dies stops renewing, and its message is delivered again
// within lease instead of the queue's visibility timeout. q nil or lease 0:
// no lease, as SQSHandler.
func LeasedSQSHandler(p *Processor, q Leaser, lease time.Duration) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		if deadline, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadlineCause(ctx, deadline.Add(-LambdaMargin), errOutOfTime)
			defer cancel()
		}
		var (
			mu  sync.Mutex
			res events.SQSEventResponse
			wg  sync.WaitGroup
		)
		for _, rec := range ev.Records {
			wg.Go(func() {
				log := p.log.With("message_id", rec.MessageId)
				if q != nil && lease > 0 {
					leaseCtx, stop := context.WithCancel(ctx)
					var held sync.WaitGroup
					held.Go(func() { holdLease(leaseCtx, q, p.cfg.Clock, rec.ReceiptHandle, lease, true, log) })
					defer held.Wait()
					defer stop()
				}
				// 0 when the attribute is missing: counted as the first.
				receives, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
				if p.handleBody(ctx, rec.Body, receives, log) {
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
