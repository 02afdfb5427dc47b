// Package ramen is longrun's example job: the seed's ramen timer. It waits a
// number of seconds, reporting progress each second, and then announces that
// the ramen is boiled.
package ramen

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	longrun "github.com/longrun/longrun"
)

// Message is the seed's output message.
const Message = "The ramen is boiled. If you don't eat it quickly, it will grow."

// MaxSeconds bounds input.seconds: a day.
const MaxSeconds = 86400

// ErrNameInvalidInput and ErrNameFailed are the job's own error names.
const (
	ErrNameInvalidInput = "Ramen.InvalidInput"
	ErrNameFailed       = "Ramen.Failed"
)

// Timer is the ramen timer.
type Timer struct {
	// Seconds is how long to boil when the input does not say (the seed's
	// TIMER, read from the environment by the mains).
	Seconds float64
	// Sleep waits d or until ctx ends; nil means real time. Tests inject one.
	Sleep func(ctx context.Context, d time.Duration) error
}

// New returns the ramen job boiling for seconds by default.
func New(seconds float64) longrun.Job { return Timer{Seconds: seconds}.Run }

// input is what a request may set; other fields are ignored, as the seed did.
type input struct {
	Seconds *float64 `json:"seconds"`
	Fail    *string  `json:"fail"`
}

type output struct {
	Message string `json:"message"`
}

// Run is the job: input {"seconds"?: number, "fail"?: "reason"}.
func (t Timer) Run(ctx context.Context, raw json.RawMessage, report func(longrun.Progress)) (json.RawMessage, error) {
	in, err := parse(raw)
	if err != nil {
		return nil, err
	}
	if in.Fail != nil {
		return nil, &longrun.JobError{Name: ErrNameFailed, Cause: *in.Fail}
	}
	total := t.Seconds
	if in.Seconds != nil {
		total = *in.Seconds
	}
	sleep := t.Sleep
	if sleep == nil {
		sleep = sleepReal
	}
	steps := int(math.Ceil(total))
	for i := 1; i <= steps; i++ {
		step := time.Second
		if rest := total - float64(i-1); rest < 1 {
			step = time.Duration(rest * float64(time.Second))
		}
		if err := sleep(ctx, step); err != nil {
			return nil, fmt.Errorf("boil: %w", err)
		}
		elapsed := min(float64(i), total)
		report(longrun.Progress{Percent: 100 * elapsed / total, Message: fmt.Sprintf("boiling: %g of %g s", elapsed, total)})
	}
	return json.Marshal(output{Message: Message})
}

// parse reads the job's options from an object input; any other input
// (null, a string, …) means the defaults, as in the seed.
func parse(raw json.RawMessage) (input, error) {
	var in input
	if len(raw) == 0 {
		return in, nil
	}
	var probe any
	if err := json.Unmarshal(raw, &probe); err != nil {
		return in, &longrun.JobError{Name: ErrNameInvalidInput, Cause: fmt.Sprintf("input is not JSON: %v", err)}
	}
	if _, ok := probe.(map[string]any); !ok {
		return in, nil
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return in, &longrun.JobError{Name: ErrNameInvalidInput, Cause: `"seconds" must be a number and "fail" a string`}
	}
	if s := in.Seconds; s != nil && (*s < 0 || *s > MaxSeconds || math.IsNaN(*s)) {
		return in, &longrun.JobError{Name: ErrNameInvalidInput, Cause: fmt.Sprintf(`"seconds" must be from 0 to %d, got %g`, MaxSeconds, *s)}
	}
	return in, nil
}

// sleepReal waits d on the real clock, or until ctx ends.
func sleepReal(ctx context.Context, d time.Duration) error {
	var clock longrun.SystemClock
	return longrun.SleepUntil(ctx, clock, clock.Now().Add(d))
}

// Kind is the name the example registers the ramen timer under.
const Kind = "ramen"

// Register adds the ramen timer to reg as Kind, boiling for seconds when the
// input does not say: the one definition of the example that `longrun`
// (cli.Main) and the Lambda functions (awslambda.Main) share. Its input is
// any JSON, as in the seed, so it has no InputSchema.
func Register(reg *longrun.Registry, seconds float64) {
	reg.Handle(Kind, New(seconds), longrun.JobOptions{
		Description: `the seed's ramen timer: input {"seconds"?: number, "fail"?: "reason"}`,
	})
}

// EnvTimerSeconds is the variable template.yaml sets to the RamenTimerSeconds
// parameter: the default boiling time on AWS.
const EnvTimerSeconds = "LONGRUN_RAMEN_TIMER_SECONDS"

// DefaultSeconds is the boiling time when EnvTimerSeconds is unset: the
// default of template.yaml's RamenTimerSeconds.
const DefaultSeconds = 10

// SecondsFromEnv reads EnvTimerSeconds: DefaultSeconds when unset, an error
// when it is not a number of seconds from 0 to MaxSeconds.
func SecondsFromEnv(getenv func(string) string) (float64, error) {
	s := getenv(EnvTimerSeconds)
	if s == "" {
		return DefaultSeconds, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > MaxSeconds || math.IsNaN(v) {
		return 0, fmt.Errorf("%s=%q: want seconds from 0 to %d", EnvTimerSeconds, s, MaxSeconds)
	}
	return v, nil
}
