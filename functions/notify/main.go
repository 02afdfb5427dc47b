// Command notify records outcomes and sends webhooks (NotifyFunction), invoked by both
// state machines and by the EventBridge status-change rule.
// Configuration comes from the environment template.yaml sets; see
// internal/awsapp.
package main

import "github.com/longrun/longrun/internal/awsapp"

func main() { awsapp.Main("notify", (*awsapp.App).Notify) }
