package delivery

import (
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun"
)

func failures(n int, at time.Time) []longrun.Attempt {
	out := make([]longrun.Attempt, n)
	for i := range out {
		out[i] = longrun.Attempt{At: at, StatusCode: 500}
	}
	return out
}

func TestNext(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	low := func() float64 { return 0 }
	high := func() float64 { return 0.999999 }
	retry := Result{Verdict: Retry, Attempt: longrun.Attempt{At: now, StatusCode: 500}}
	withRetryAfter := func(d time.Duration) Result { r := retry; r.RetryAfter = d; return r }
	cases := []struct {
		name  string
		sched Schedule
		made  int // attempts already made in the round (Delivery.RoundAttempts)
		r     Result
		state longrun.DeliveryState
		next  time.Duration // after now; 0 when none
	}{
		{"2xx delivers", Schedule{Rand: low}, 0, Result{Verdict: Delivered}, longrun.DeliveryDelivered, 0},
		{"410 fails at once", Schedule{Rand: low}, 2, Result{Verdict: Stop}, longrun.DeliveryFailed, 0},
		{"first failure: 5 s", Schedule{Rand: low}, 0, retry, longrun.DeliveryPending, 5 * time.Second},
		{"first failure, most jitter: under 6.25 s", Schedule{Rand: high}, 0, retry, longrun.DeliveryPending, 7 * time.Second},
		{"second failure: 5 min", Schedule{Rand: low}, 1, retry, longrun.DeliveryPending, 5 * time.Minute},
		{"second failure, most jitter", Schedule{Rand: high}, 1, retry, longrun.DeliveryPending, 6*time.Minute + 15*time.Second},
		{"fourth failure: 2 h", Schedule{Rand: low}, 3, retry, longrun.DeliveryPending, 2 * time.Hour},
		{"seventh failure: 10 h", Schedule{Rand: low}, 6, retry, longrun.DeliveryPending, 10 * time.Hour},
		{"seventh failure, most jitter: 12.5 h", Schedule{Rand: high}, 6, retry, longrun.DeliveryPending, 12*time.Hour + 30*time.Minute},
		{"eighth failure exhausts", Schedule{Rand: low}, 7, retry, longrun.DeliveryFailed, 0},
		{"Retry-After later than the slot wins", Schedule{Rand: low}, 0, withRetryAfter(90 * time.Second), longrun.DeliveryPending, 90 * time.Second},
		{"slot later than Retry-After wins", Schedule{Rand: low}, 1, withRetryAfter(90 * time.Second), longrun.DeliveryPending, 5 * time.Minute},
		{"Retry-After capped at a day", Schedule{Rand: low}, 0, withRetryAfter(1000 * time.Hour), longrun.DeliveryPending, 24 * time.Hour},
		{"Retry-After adds no attempt", Schedule{Rand: low}, 7, withRetryAfter(time.Minute), longrun.DeliveryFailed, 0},
		{"custom schedule", Schedule{Delays: []time.Duration{time.Second, 2 * time.Second}, Rand: low}, 1, retry, longrun.DeliveryPending, 2 * time.Second},
		{"custom schedule exhausted", Schedule{Delays: []time.Duration{time.Second, 2 * time.Second}, Rand: low}, 2, retry, longrun.DeliveryFailed, 0},
		// A redeliver request starts a round at 0, whatever came before.
		{"first attempt of a redelivery round", Schedule{Rand: low}, 0, retry, longrun.DeliveryPending, 5 * time.Second},
		{"second attempt of a redelivery round", Schedule{Rand: low}, 1, retry, longrun.DeliveryPending, 5 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The history kept does not matter, only the round's place.
			d := longrun.Delivery{State: longrun.DeliveryPending, Attempts: failures(45, now), RoundAttempts: tc.made}
			state, next := tc.sched.Next(d, tc.r, now)
			if state != tc.state {
				t.Fatalf("state %s, want %s", state, tc.state)
			}
			var want time.Time
			if tc.next > 0 {
				want = now.Add(tc.next)
			}
			if !next.Equal(want) {
				t.Fatalf("next attempt %s, want %s", next, want)
			}
		})
	}
}

// TestJitterBounds draws the whole schedule many times with the real random
// source: every wait is in [d, d·1.25] rounded up to a second, and the
// schedule spans more than a day.
func TestJitterBounds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	s := Schedule{}
	for range 200 {
		var d longrun.Delivery
		total := time.Duration(0)
		for i, base := range DefaultDelays {
			r := Result{Verdict: Retry, Attempt: longrun.Attempt{At: now, StatusCode: 503}}
			d = s.Record(d, r, now)
			wait := d.NextAttempt.Sub(now)
			hi := base + time.Duration(JitterSpread*float64(base)) + time.Second
			if d.State != longrun.DeliveryPending || wait < base || wait > hi {
				t.Fatalf("wait %d = %s (%s), want pending in [%s, %s]", i, wait, d.State, base, hi)
			}
			total += wait
		}
		if total < 24*time.Hour {
			t.Fatalf("schedule spans %s, want ≥ 24 h", total)
		}
		d = s.Record(d, Result{Verdict: Retry}, now)
		if d.State != longrun.DeliveryFailed || !d.NextAttempt.IsZero() || len(d.Attempts) != len(DefaultDelays)+1 {
			t.Fatalf("after %d attempts: %s, want failed with no next attempt", len(d.Attempts), Describe(d))
		}
	}
}

func TestRecordKeepsNewestAttempts(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	d := longrun.Delivery{EventID: "msg_1", Attempts: failures(longrun.MaxAttemptsKept, now.Add(-time.Hour))}
	prior := d.Attempts
	got := Schedule{Rand: func() float64 { return 0 }}.Record(d, Result{Verdict: Delivered, Attempt: longrun.Attempt{At: now, StatusCode: 204}}, now)
	if len(got.Attempts) != longrun.MaxAttemptsKept || got.Attempts[len(got.Attempts)-1].StatusCode != 204 {
		t.Fatalf("kept %d attempts ending with %+v, want %d ending with the new one", len(got.Attempts), got.Attempts[len(got.Attempts)-1], longrun.MaxAttemptsKept)
	}
	if got.State != longrun.DeliveryDelivered || got.EventID != "msg_1" || &prior[0] == &got.Attempts[0] {
		t.Fatalf("got %+v; want delivered, same event id, and the caller's slice untouched", got)
	}
}

func TestNextRoundsUpToWholeSeconds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 9, 0, 0, 400_000_000, time.UTC)
	_, next := Schedule{Rand: func() float64 { return 0 }}.Next(longrun.Delivery{}, Result{Verdict: Retry}, now)
	if want := time.Date(2026, 11, 25, 9, 0, 6, 0, time.UTC); !next.Equal(want) {
		t.Fatalf("next %s, want %s", next, want)
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	cases := []struct {
		text string
		want []time.Duration
		fix  string
	}{
		{"1s,5s,30s", []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}, ""},
		{" 5s , 5m,30m,2h,5h,10h,10h ", DefaultDelays, ""},
		{"250ms", []time.Duration{250 * time.Millisecond}, ""},
		{"", nil, "empty"},
		{"5s,,1m", nil, "delay 2"},
		{"5", nil, "not a duration"},
		{"5s,-1m", nil, "positive"},
		{"0s", nil, "positive"},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSchedule(tc.text)
			if tc.fix != "" {
				if !longrun.IsCode(err, longrun.EINVALID) || !strings.Contains(err.Error(), tc.fix) {
					t.Fatalf("ParseSchedule(%q) = %v, %v; want EINVALID mentioning %q", tc.text, got, err, tc.fix)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("ParseSchedule(%q) = %v, %v; want %v", tc.text, got, err, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("ParseSchedule(%q) = %v, want %v", tc.text, got, tc.want)
				}
			}
			if back, _ := ParseSchedule(Schedule{Delays: got}.String()); len(back) != len(got) {
				t.Fatalf("String does not round-trip: %q", Schedule{Delays: got}.String())
			}
		})
	}
}

func TestInProgress(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		d    *longrun.Delivery
		want bool
	}{
		{"none", nil, false},
		{"delivered", &longrun.Delivery{State: longrun.DeliveryDelivered}, false},
		{"failed", &longrun.Delivery{State: longrun.DeliveryFailed}, false},
		{"pending, due later", &longrun.Delivery{State: longrun.DeliveryPending, NextAttempt: now.Add(time.Hour)}, true},
		{"pending, just due", &longrun.Delivery{State: longrun.DeliveryPending, NextAttempt: now.Add(-StallAfter)}, true},
		{"pending, stalled", &longrun.Delivery{State: longrun.DeliveryPending, NextAttempt: now.Add(-StallAfter - time.Second)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := InProgress(tc.d, now); got != tc.want {
				t.Fatalf("InProgress = %v, want %v", got, tc.want)
			}
		})
	}
}
