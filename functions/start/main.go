// Command start serves POST /start-execution (StartFunction): it records the execution
// and starts the longrun state machine.
// Configuration comes from the environment template.yaml sets; see
// internal/awsapp.
package main

import "github.com/longrun/longrun/internal/awsapp"

func main() { awsapp.Main("start", (*awsapp.App).Start) }
