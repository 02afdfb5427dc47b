package asl

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// waitState delays the execution for Seconds, until Timestamp, or for/until
// a value read from the input (SecondsPath, TimestampPath). Its output is
// its (filtered) input.
type waitState struct {
	base
	seconds       int
	timestamp     time.Time
	secondsPath   *path
	timestampPath *path
	secondsExpr   *jexpr // JSONata
	timestampExpr *jexpr
}

// maxWaitSeconds is the longest a Standard execution lives (a year).
const maxWaitSeconds = 31622400

func parseWait(f *fields, b base) *waitState {
	s := &waitState{base: b}
	f.transition(&s.base)
	s.addTarget("Next", s.next)
	s.inputPath = f.filter("InputPath")
	s.outputPath = f.filter("OutputPath")
	s.assign = f.assign("Assign")
	if f.jsonata {
		s.output = f.jtmpl("Output")
		if f.has("Seconds") == f.has("Timestamp") {
			f.problem("Seconds", "a JSONata Wait state needs exactly one of Seconds and Timestamp")
		}
		s.seconds, s.secondsExpr = f.jint("Seconds", 0, maxWaitSeconds)
		var ts string
		if ts, s.timestampExpr = f.jstring("Timestamp"); ts != "" {
			t, err := parseTimestamp(ts)
			if err != nil {
				f.problem("Timestamp", "%q is not an RFC 3339 timestamp", ts)
			}
			s.timestamp = t
		}
		return s
	}
	set := 0
	for _, k := range []string{"Seconds", "Timestamp", "SecondsPath", "TimestampPath"} {
		if f.has(k) {
			set++
		}
	}
	if set != 1 {
		f.problem("Seconds", "a Wait state needs exactly one of Seconds, Timestamp, SecondsPath and TimestampPath (it has %d)", set)
	}
	s.seconds, _ = f.integer("Seconds", 0, maxWaitSeconds)
	if ts, ok := f.str("Timestamp"); ok {
		t, err := parseTimestamp(ts)
		if err != nil {
			f.problem("Timestamp", "%q is not an RFC 3339 timestamp", ts)
		}
		s.timestamp = t
	}
	s.secondsPath = f.path("SecondsPath", true, true)
	s.timestampPath = f.path("TimestampPath", true, true)
	return s
}

func (s *waitState) enter(cl *call, now time.Time) Step {
	if s.jsonata {
		return s.enterJ(cl, now)
	}
	eff, err := s.inputPath.apply(cl.input, cl, "InputPath")
	if err != nil {
		return failStep(asStateError(err))
	}
	until, serr := s.until(eff, cl, now)
	if serr != nil {
		return failStep(serr)
	}
	out, err := s.outputPath.apply(eff, cl, "OutputPath")
	if err != nil {
		return failStep(asStateError(err))
	}
	step, serr := withAssign(s.assign, eff, cl, s.proceed(cl, out))
	if serr != nil {
		return failStep(serr)
	}
	if step.Kind == StepFail {
		return step
	}
	return Step{Kind: StepWait, Next: step.Next, Output: step.Output, Until: until, Variables: step.Variables}
}

func (s *waitState) until(eff any, cl *call, now time.Time) (time.Time, *stateError) {
	switch {
	case s.secondsPath != nil:
		v, err := s.secondsPath.get(eff, cl)
		if err != nil {
			return time.Time{}, &stateError{ErrRuntime, fmt.Sprintf("Invalid path '%s' in SecondsPath: the path selects nothing", s.secondsPath.src)}
		}
		n, ok := v.(json.Number)
		f, ferr := n.Float64()
		if !ok || ferr != nil || f < 0 || f != math.Trunc(f) || f > maxWaitSeconds {
			return time.Time{}, &stateError{ErrRuntime, fmt.Sprintf("SecondsPath '%s' must select a non-negative integer, not %s", s.secondsPath.src, encodeJSON(v))}
		}
		return now.Add(time.Duration(f) * time.Second), nil
	case s.timestampPath != nil:
		v, err := s.timestampPath.get(eff, cl)
		if err != nil {
			return time.Time{}, &stateError{ErrRuntime, fmt.Sprintf("Invalid path '%s' in TimestampPath: the path selects nothing", s.timestampPath.src)}
		}
		str, _ := v.(string)
		t, perr := parseTimestamp(str)
		if perr != nil {
			return time.Time{}, &stateError{ErrRuntime, fmt.Sprintf("TimestampPath '%s' must select an RFC 3339 timestamp, not %s", s.timestampPath.src, encodeJSON(v))}
		}
		return t, nil
	case !s.timestamp.IsZero():
		return s.timestamp, nil
	}
	return now.Add(time.Duration(s.seconds) * time.Second), nil
}

// parseTimestamp accepts the spec's Timestamp: RFC 3339 with an uppercase T
// and, without an offset, an uppercase Z.
func parseTimestamp(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}
