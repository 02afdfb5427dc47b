package delivery

import (
	"fmt"
	"time"

	"github.com/longrun/longrun"
)

// MaxRoundStarts bounds how many ended rounds StartRound steps over.
const MaxRoundStarts = 3

// NextRound returns d in the next round, due now: saved, the record reads as
// driven at once (InProgress), so nobody starts yet another round meanwhile.
// The round keeps its place in the schedule (RoundAttempts).
func NextRound(d longrun.Delivery, now time.Time) longrun.Delivery {
	d.Round++
	d.NextAttempt = now.UTC()
	return d
}

// StartRound starts the loop of d's round (start is Orchestrator.Redeliver
// for the execution). Starting a round whose loop runs starts nothing new; a
// round whose loop has ended (ENOTRUNNING: its name is taken) gives way to
// the next, which is saved before it is started. It returns d as it stands.
func StartRound(d longrun.Delivery, now time.Time, save func(longrun.Delivery) error, start func(round int) error) (longrun.Delivery, error) {
	for range MaxRoundStarts {
		err := start(d.Round)
		if !longrun.IsCode(err, longrun.ENOTRUNNING) {
			return d, err
		}
		d = NextRound(d, now)
		if err := save(d); err != nil {
			return d, fmt.Errorf("save round %d: %w", d.Round, err)
		}
	}
	return d, fmt.Errorf("%d rounds in a row had ended already", MaxRoundStarts)
}
