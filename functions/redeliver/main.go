// Command redeliver serves POST /executions/{id}/redeliver (RedeliverFunction): it starts
// the deliver state machine again for an ended execution.
// Configuration comes from the environment template.yaml sets; see
// internal/awsapp.
package main

import "github.com/longrun/longrun/internal/awsapp"

func main() { awsapp.Main("redeliver", (*awsapp.App).Redeliver) }
