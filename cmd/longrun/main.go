// Command longrun is the longrun CLI with the example job, the ramen timer,
// registered through the same public API a project of its own jobs uses
// (package cli holds the whole command line).
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/cli"
	"github.com/longrun/longrun/jobs/ramen"
)

func main() {
	seconds, err := timerSeconds(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "longrun:", err)
		os.Exit(1)
	}
	reg := longrun.NewRegistry()
	reg.Handle("ramen", ramen.New(seconds), longrun.JobOptions{
		Description: `waits input.seconds (default TIMER), then says the ramen is boiled; {"fail": "why"} fails`,
	})
	cli.Main(reg)
}

// timerSeconds is the ramen's default TIMER: LONGRUN_RAMEN_TIMER_SECONDS
// (which template.yaml gives the worker from RamenTimerSeconds), else that
// parameter's default, 10.
func timerSeconds(getenv func(string) string) (float64, error) {
	s := getenv("LONGRUN_RAMEN_TIMER_SECONDS")
	if s == "" {
		return 10, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > ramen.MaxSeconds {
		return 0, fmt.Errorf("LONGRUN_RAMEN_TIMER_SECONDS=%q: want seconds from 0 to %d", s, ramen.MaxSeconds)
	}
	return v, nil
}
