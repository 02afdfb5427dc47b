package ramen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	longrun "github.com/longrun/longrun"
)

// setup returns a timer of seconds whose sleeps are recorded, not waited,
// and fail with ctx's error when ctx has ended.
func setup(t *testing.T, seconds float64) (Timer, *[]time.Duration) {
	t.Helper()
	var slept []time.Duration
	return Timer{Seconds: seconds, Sleep: func(ctx context.Context, d time.Duration) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		slept = append(slept, d)
		return nil
	}}, &slept
}

func TestTimer(t *testing.T) {
	t.Parallel()
	const boiled = `{"message":"The ramen is boiled. If you don't eat it quickly, it will grow."}`
	s := time.Second
	tests := []struct {
		name        string
		input       string
		wantSleeps  []time.Duration
		wantPercent []float64
		wantErrName string
	}{
		{name: "default from TIMER", input: `{}`, wantSleeps: []time.Duration{s, s, s}, wantPercent: []float64{100.0 / 3, 200.0 / 3, 100}},
		{name: "null input uses the default", input: `null`, wantSleeps: []time.Duration{s, s, s}, wantPercent: []float64{100.0 / 3, 200.0 / 3, 100}},
		{name: "no input uses the default", input: ``, wantSleeps: []time.Duration{s, s, s}, wantPercent: []float64{100.0 / 3, 200.0 / 3, 100}},
		{name: "non-object input uses the default", input: `"tonkotsu"`, wantSleeps: []time.Duration{s, s, s}, wantPercent: []float64{100.0 / 3, 200.0 / 3, 100}},
		{name: "seconds from the input", input: `{"seconds":2}`, wantSleeps: []time.Duration{s, s}, wantPercent: []float64{50, 100}},
		{name: "fractional seconds", input: `{"seconds":1.5}`, wantSleeps: []time.Duration{s, s / 2}, wantPercent: []float64{100.0 / 1.5, 100}},
		{name: "zero seconds", input: `{"seconds":0}`},
		{name: "a day is allowed", input: `{"seconds":86400,"fail":"too long"}`, wantErrName: ErrNameFailed},
		{name: "negative", input: `{"seconds":-1}`, wantErrName: ErrNameInvalidInput},
		{name: "over a day", input: `{"seconds":86401}`, wantErrName: ErrNameInvalidInput},
		{name: "not a number", input: `{"seconds":"ten"}`, wantErrName: ErrNameInvalidInput},
		{name: "fail", input: `{"fail":"the pot boiled dry"}`, wantErrName: ErrNameFailed},
		{name: "fail not a string", input: `{"fail":true}`, wantErrName: ErrNameInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			timer, slept := setup(t, 3)
			var percents []float64
			out, err := timer.Run(context.Background(), json.RawMessage(tt.input), func(p longrun.Progress) { percents = append(percents, p.Percent) })
			if tt.wantErrName != "" {
				var je *longrun.JobError
				if !errors.As(err, &je) || je.Name != tt.wantErrName || je.Cause == "" {
					t.Fatalf("err = %v, want a JobError %s with a cause", err, tt.wantErrName)
				}
				if len(*slept) != 0 {
					t.Fatal("a refused input boiled anyway")
				}
				return
			}
			if err != nil || string(out) != boiled {
				t.Fatalf("Run = %s, %v", out, err)
			}
			if fmt.Sprint(*slept) != fmt.Sprint(tt.wantSleeps) || fmt.Sprintf("%.3f", percents) != fmt.Sprintf("%.3f", tt.wantPercent) {
				t.Fatalf("sleeps %v progress %v; want %v %v", *slept, percents, tt.wantSleeps, tt.wantPercent)
			}
		})
	}
}

func TestTimerFailCause(t *testing.T) {
	t.Parallel()
	timer, _ := setup(t, 3)
	_, err := timer.Run(context.Background(), json.RawMessage(`{"fail":"the pot boiled dry"}`), func(longrun.Progress) {})
	if err.Error() != "Ramen.Failed: the pot boiled dry" {
		t.Fatalf("err = %v", err)
	}
}

func TestTimerStopped(t *testing.T) {
	t.Parallel()
	timer, _ := setup(t, 10)
	ctx, cancel := context.WithCancel(context.Background())
	reports := 0
	_, err := timer.Run(ctx, json.RawMessage(`{}`), func(longrun.Progress) {
		if reports++; reports == 2 {
			cancel() // the execution is stopped mid-boil
		}
	})
	if !errors.Is(err, context.Canceled) || reports != 2 {
		t.Fatalf("err = %v after %d reports; want context.Canceled after 2", err, reports)
	}
}

func TestTimerRealSleepHonoursContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := New(3600)(ctx, json.RawMessage(`{}`), func(longrun.Progress) {})
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Fatalf("err = %v after %v; want an immediate context.Canceled", err, time.Since(start))
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	reg := longrun.NewRegistry()
	Register(reg, 0)
	k, ok := reg.Lookup("")
	if !ok || k.Name != Kind || k.Options.Description == "" {
		t.Fatalf("default kind = %+v, %v; want the ramen timer described", k, ok)
	}
	out, err := k.Job(context.Background(), json.RawMessage(`{"seconds":0}`), func(longrun.Progress) {})
	if err != nil || !strings.Contains(string(out), Message) {
		t.Fatalf("registered job = %s, %v; want the ramen message", out, err)
	}
	if err := k.ValidateInput([]byte(`"any JSON, as in the seed"`)); err != nil {
		t.Fatalf("the ramen kind refuses an input the seed accepted: %v", err)
	}
}

func TestSecondsFromEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value   string
		want    float64
		wantErr bool
	}{
		{"", DefaultSeconds, false}, {"0", 0, false}, {"2.5", 2.5, false}, {"-1", 0, true}, {"NaN", 0, true}, {"ten", 0, true}, {"86401", 0, true},
	} {
		got, err := SecondsFromEnv(func(k string) string {
			if k == EnvTimerSeconds {
				return tc.value
			}
			return ""
		})
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("SecondsFromEnv(%q) = %g, %v; want %g, error %v", tc.value, got, err, tc.want, tc.wantErr)
		}
	}
}
