// Command stop serves POST /stop-execution and DELETE /executions/{id} (StopFunction).
// Configuration comes from the environment template.yaml sets; see
// internal/awsapp.
package main

import "github.com/longrun/longrun/internal/awsapp"

func main() { awsapp.Main("stop", (*awsapp.App).Stop) }
