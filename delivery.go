package longrun

import (
	"strconv"
	"time"
)

// EventType is the type of a webhook event.
type EventType string

// One event type per terminal status.
const (
	EventSucceeded EventType = "execution.succeeded"
	EventFailed    EventType = "execution.failed"
	EventTimedOut  EventType = "execution.timed_out"
	EventAborted   EventType = "execution.aborted"
)

// EventTypeFor returns the webhook event type announcing status s.
func EventTypeFor(s Status) EventType {
	switch s {
	case StatusSucceeded:
		return EventSucceeded
	case StatusFailed:
		return EventFailed
	case StatusTimedOut:
		return EventTimedOut
	case StatusAborted:
		return EventAborted
	}
	return ""
}

// DeliveryState is where a webhook delivery stands.
type DeliveryState string

// A delivery is pending until one attempt succeeds (delivered) or the schedule is
// exhausted or the receiver answered 410 Gone (failed).
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryFailed    DeliveryState = "failed"
)

// Delivery is the webhook of an execution's outcome: one event, many attempts.
type Delivery struct {
	EventID     string // webhook-id: stable across every attempt and redelivery of the event
	Type        EventType
	State       DeliveryState
	Attempts    []Attempt
	NextAttempt time.Time // when the next attempt is due; zero when none is
	// Round counts the rounds of delivery: 0 for the one that follows the
	// outcome, one more for each redeliver request or restart of a stalled
	// round. Each round is driven by one deliver state machine execution
	// named after it, so starting a round twice starts it once.
	Round int
	// RoundAttempts counts the attempts made on the current round's
	// schedule: its place in the schedule. A redeliver request starts it
	// again from 0; a stalled round restarted keeps its place.
	RoundAttempts int
}

// MaxAttemptsKept bounds Delivery.Attempts; the oldest are dropped past it so a
// record cannot grow without bound through redeliveries.
const MaxAttemptsKept = 50

// Attempt is one try at delivering a webhook.
type Attempt struct {
	At         time.Time
	StatusCode int           // 0 when no response arrived
	Latency    time.Duration //
	Error      string        // short excerpt: dial error, timeout, or the start of a non-2xx body
}

// Tenant owns API keys, executions and webhook secrets.
type Tenant struct {
	ID      string
	Secrets []WebhookSecret // newest first; webhooks are signed with every unexpired one
}

// WebhookSecret is a Standard Webhooks signing secret ("whsec_" + base64).
type WebhookSecret struct {
	Value     string
	CreatedAt time.Time
	ExpiresAt time.Time // zero for the current secret; set on rotation to now + SecretOverlap
}

// SecretOverlap is how long a rotated-out secret still signs webhooks, so
// receivers can switch without dropping a delivery.
const SecretOverlap = 24 * time.Hour

// ActiveSecrets returns the secrets that sign a webhook sent at now.
func (t *Tenant) ActiveSecrets(now time.Time) []string {
	var out []string
	for _, s := range t.Secrets {
		if s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) {
			out = append(out, s.Value)
		}
	}
	return out
}

// DeliverName is the name of the deliver state machine execution that drives
// round `round` of an execution's webhook delivery (at most 36+2+digits
// characters, within Step Functions' 80).
func DeliverName(executionID string, round int) string {
	return executionID + "-r" + strconv.Itoa(round)
}
