package sqlite

import (
	"time"

	"github.com/longrun/longrun"
)

// The JSON documents stored in text columns have their own types with
// explicit names, so renaming a domain field cannot silently orphan data.

type delivery struct {
	EventID     string    `json:"eventId"`
	Type        string    `json:"type"`
	State       string    `json:"state"`
	Attempts    []attempt `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	Round       int       `json:"round,omitempty"`
	RoundTries  int       `json:"roundAttempts,omitempty"`
}

type attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode,omitempty"`
	LatencyMS  int64     `json:"latencyMs"`
	Error      string    `json:"error,omitempty"`
}

func fromDelivery(d longrun.Delivery) delivery {
	out := delivery{EventID: d.EventID, Type: string(d.Type), State: string(d.State), NextAttempt: d.NextAttempt, Round: d.Round, RoundTries: d.RoundAttempts}
	for _, a := range d.Attempts {
		out.Attempts = append(out.Attempts, attempt{At: a.At, StatusCode: a.StatusCode, LatencyMS: a.Latency.Milliseconds(), Error: a.Error})
	}
	return out
}

func (d delivery) domain() *longrun.Delivery {
	out := &longrun.Delivery{EventID: d.EventID, Type: longrun.EventType(d.Type), State: longrun.DeliveryState(d.State), NextAttempt: d.NextAttempt, Round: d.Round, RoundAttempts: d.RoundTries}
	for _, a := range d.Attempts {
		out.Attempts = append(out.Attempts, longrun.Attempt{At: a.At, StatusCode: a.StatusCode, Latency: time.Duration(a.LatencyMS) * time.Millisecond, Error: a.Error})
	}
	return out
}

type secret struct {
	Value     string    `json:"value"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}
