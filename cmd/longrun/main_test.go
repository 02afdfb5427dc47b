package main

import (
	"strings"
	"testing"
)

func TestTimerSeconds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env     string
		want    float64
		wantErr bool
	}{
		{env: "", want: 10},
		{env: "2.5", want: 2.5},
		{env: "0", want: 0},
		{env: "-1", wantErr: true},
		{env: "soon", wantErr: true},
		{env: "86401", wantErr: true},
	} {
		got, err := timerSeconds(func(string) string { return tt.env })
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), "LONGRUN_RAMEN_TIMER_SECONDS") {
				t.Errorf("LONGRUN_RAMEN_TIMER_SECONDS=%q: %g, %v; want an error naming the variable", tt.env, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("LONGRUN_RAMEN_TIMER_SECONDS=%q: %g, %v; want %g", tt.env, got, err, tt.want)
		}
	}
}
