// Package longrun is the domain of the longrun asynchronous job API: executions,
// their outcomes and webhook deliveries, tenants and their keys, the jobs users
// write, and the ports (small interfaces) through which the API, the worker and
// notify reach storage, orchestration and queues.
//
// The domain imports neither AWS nor SQLite. Adapters live in their own packages:
// internal/dynamostore, internal/sfnengine and internal/sqsqueue on AWS;
// internal/sqlite and internal/local on one machine. Each port has one conformance
// suite (internal/storetest, internal/queuetest) that every adapter passes.
package longrun

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Limits that bound the API. They follow the AWS services underneath, so an
// execution accepted locally is also one Step Functions would accept.
const (
	// MaxInputBytes is Step Functions' payload limit (256 KiB); the whole
	// state input, not only the user's part, must fit under it.
	MaxInputBytes = 256 * 1024
	// StateOverheadBytes is the room kept under MaxInputBytes for what
	// travels with the user's data: the task token (up to about 1 KiB on
	// AWS), ids and ARN in the job's SQS message (whose limit is also
	// 256 KiB), and the state's other fields beside the job's output.
	StateOverheadBytes = 2 * 1024
	// MaxNameLength is the limit on a client-chosen execution name.
	MaxNameLength = 80
	// MaxIdempotencyKeyLength bounds the Idempotency-Key header.
	MaxIdempotencyKeyLength = 255
	// IdempotencyWindow is how long an Idempotency-Key is remembered.
	IdempotencyWindow = 24 * time.Hour
	// MaxListLimit is the largest page GET /executions returns.
	MaxListLimit = 100
)

// NewExecutionID returns a new execution id: a UUIDv7, so ids sort by creation
// time and "newest first" is "id descending" in every store.
func NewExecutionID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// RandomToken returns n random bytes, for API keys and webhook secrets.
func RandomToken(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand.Read never fails on supported platforms (Go 1.24+).
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return b
}
