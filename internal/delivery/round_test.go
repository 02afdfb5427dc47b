package delivery

import (
	"errors"
	"testing"
	"time"

	"github.com/longrun/longrun"
)

func TestStartRound(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	ended := func(rounds ...int) func(int) error {
		return func(round int) error {
			for _, r := range rounds {
				if r == round {
					return longrun.Errorf(longrun.ENOTRUNNING, "round %d has ended", round)
				}
			}
			return nil
		}
	}
	for _, tt := range []struct {
		name       string
		start      func(int) error
		wantRound  int
		wantSaves  int
		wantErr    bool
		wantPlaced bool // NextAttempt moved to now
	}{
		{"its loop runs or starts", ended(), 4, 0, false, false},
		{"ended rounds give way to the next", ended(4, 5), 6, 2, false, true},
		{"too many ended rounds", ended(4, 5, 6, 7), 7, 3, true, true},
		{"another failure", func(int) error { return errors.New("throttled") }, 4, 0, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := longrun.Delivery{State: longrun.DeliveryPending, Round: 4, RoundAttempts: 3, NextAttempt: now.Add(-time.Hour)}
			var saved []longrun.Delivery
			got, err := StartRound(d, now, func(d longrun.Delivery) error { saved = append(saved, d); return nil }, tt.start)
			if (err != nil) != tt.wantErr || got.Round != tt.wantRound || len(saved) != tt.wantSaves || got.NextAttempt.Equal(now) != tt.wantPlaced {
				t.Fatalf("round %d, %d saves, next %s, err %v; want round %d, %d saves, moved %v, err %v",
					got.Round, len(saved), got.NextAttempt, err, tt.wantRound, tt.wantSaves, tt.wantPlaced, tt.wantErr)
			}
			if got.RoundAttempts != 3 {
				t.Fatalf("RoundAttempts %d: a new round keeps its place in the schedule", got.RoundAttempts)
			}
		})
	}
}
