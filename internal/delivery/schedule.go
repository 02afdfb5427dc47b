package delivery

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/longrun/longrun"
)

// DefaultDelays are the waits after each failed attempt: the first attempt is
// immediate, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight attempts
// over 27 h 35 min, so a receiver that is down for a day still gets the event.
var DefaultDelays = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// maxRetryAfter caps a receiver's Retry-After, so one answer cannot park a
// delivery for longer than the whole schedule spans in a day.
const maxRetryAfter = 24 * time.Hour

// JitterSpread is how far past its slot an attempt may be moved: a wait d
// becomes uniform in [d, d + d·JitterSpread). The jitter is upward only so
// the schedule is a floor — a receiver is never retried sooner than the
// documented delay and the retries still span more than a day — while
// deliveries that failed together (a receiver outage) spread out by a
// quarter of the wait instead of arriving together when it recovers. AWS's
// "full jitter" over [0, d] would make the 5 s retry nearly immediate and
// shrink the 27 h schedule to as little as a few seconds.
const JitterSpread = 0.25

// Schedule decides when the next attempt of a delivery is due.
type Schedule struct {
	Delays []time.Duration // nil means DefaultDelays
	Rand   func() float64  // uniform in [0, 1); nil means math/rand/v2
}

func (s Schedule) delays() []time.Duration {
	if s.Delays == nil {
		return DefaultDelays
	}
	return s.Delays
}

// ParseSchedule reads delays written "1s,5s,30s" (Go durations, comma
// separated), for configuration and tests that must not wait hours.
func ParseSchedule(text string) ([]time.Duration, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, longrun.Errorf(longrun.EINVALID, "webhook schedule is empty; write delays like \"5s,5m,30m\"")
	}
	var out []time.Duration
	for i, part := range strings.Split(text, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return nil, longrun.Errorf(longrun.EINVALID, "webhook schedule: delay %d %q is not a duration like 5s or 2h", i+1, part)
		}
		if d <= 0 {
			return nil, longrun.Errorf(longrun.EINVALID, "webhook schedule: delay %d %q must be positive", i+1, part)
		}
		out = append(out, d)
	}
	return out, nil
}

// String writes the delays the way ParseSchedule reads them.
func (s Schedule) String() string {
	parts := make([]string, len(s.delays()))
	for i, d := range s.delays() {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// Next decides where delivery d stands after attempt r, made at now: d is
// the delivery before r is recorded. A 2xx is delivered; a 410 (Stop) is
// failed; otherwise it is pending until the round's delays are used up, with
// the next attempt at the jittered slot or after Retry-After, whichever is
// later. Retry-After does not add attempts.
func (s Schedule) Next(d longrun.Delivery, r Result, now time.Time) (longrun.DeliveryState, time.Time) {
	switch r.Verdict {
	case Delivered:
		return longrun.DeliveryDelivered, time.Time{}
	case Stop:
		return longrun.DeliveryFailed, time.Time{}
	}
	made := d.RoundAttempts + 1 // including r
	delays := s.delays()
	if made > len(delays) {
		return longrun.DeliveryFailed, time.Time{}
	}
	wait := delays[made-1]
	random := rand.Float64
	if s.Rand != nil {
		random = s.Rand
	}
	wait += time.Duration(random() * JitterSpread * float64(wait))
	if ra := min(r.RetryAfter, maxRetryAfter); ra > wait {
		wait = ra
	}
	return longrun.DeliveryPending, ceilSecond(now.Add(wait))
}

// Record returns d with attempt r appended (keeping the newest
// longrun.MaxAttemptsKept) and its state and next attempt decided by Next.
func (s Schedule) Record(d longrun.Delivery, r Result, now time.Time) longrun.Delivery {
	state, next := s.Next(d, r, now)
	attempts := append(append([]longrun.Attempt(nil), d.Attempts...), r.Attempt)
	if n := len(attempts) - longrun.MaxAttemptsKept; n > 0 {
		attempts = attempts[n:]
	}
	d.Attempts, d.State, d.NextAttempt = attempts, state, next
	d.RoundAttempts++
	return d
}

// ceilSecond rounds t up to a whole second: the deliver state machine waits
// for an RFC 3339 timestamp with whole seconds, and waking a moment before
// the attempt is due would only bounce once more.
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// StallAfter is how long past its due time a pending delivery must be to be
// considered abandoned. A live deliver state machine makes a due attempt
// within one notify invocation (up to its 30 s Lambda timeout) plus the
// Deliver state's retries of a failed invocation (2 s doubling, capped at
// 60 s, six times: about 2 min), so a delivery this late has nobody driving
// it and may be restarted; a shorter bound would start a second loop beside
// a slow live one.
const StallAfter = 5 * time.Minute

// InProgress reports whether d is pending and still driven, so starting
// another round (a redeliver request) would only run two in parallel.
func InProgress(d *longrun.Delivery, now time.Time) bool {
	return d != nil && d.State == longrun.DeliveryPending && !now.After(d.NextAttempt.Add(StallAfter))
}

// Describe says, for logs, how a delivery stands.
func Describe(d longrun.Delivery) string {
	if d.State == longrun.DeliveryPending {
		return fmt.Sprintf("pending, %d attempt(s), next at %s", len(d.Attempts), d.NextAttempt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s after %d attempt(s)", d.State, len(d.Attempts))
}
