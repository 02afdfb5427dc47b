// Command worker runs jobs from the jobs queue (WorkerFunction): an SQS event source with
// ReportBatchItemFailures, completing each task token through Step Functions.
// Configuration comes from the environment template.yaml sets; see
// internal/awsapp.
package main

import "github.com/longrun/longrun/internal/awsapp"

func main() { awsapp.Main("worker", (*awsapp.App).Worker) }
