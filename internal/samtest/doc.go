// Package samtest holds the tests that check the SAM application as a
// whole, what a broken deploy would otherwise hide: template.yaml and the
// state machines parse and reference only what exists, every function's
// role allows exactly the AWS calls its code makes (recorded against the
// kumo emulator), the routes match internal/api's route table, the queue
// and job limits are consistent, every function runs as a real bootstrap
// binary under the Lambda Runtime Interface Emulator with the events in
// events/, and one execution goes end to end through kumo's Step Functions.
//
// It has no non-test code: `make invoke FN=<fn> EVENT=<file>` runs
// TestInvoke for one function.
package samtest
