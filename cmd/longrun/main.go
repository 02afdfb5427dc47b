// Command longrun is the longrun CLI with the example job, the ramen timer,
// registered through the same public API a project of its own jobs uses
// (package cli holds the whole command line).
package main

import (
	"os"
	"strconv"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/cli"
	"github.com/longrun/longrun/jobs/ramen"
)

func main() {
	reg := longrun.NewRegistry()
	reg.Handle("ramen", ramen.New(timerSeconds(os.Getenv)), longrun.JobOptions{
		Description: `waits input.seconds (default TIMER), then says the ramen is boiled; {"fail": "why"} fails`,
	})
	cli.Main(reg)
}

// timerSeconds is the ramen's default TIMER: LONGRUN_RAMEN_TIMER_SECONDS
// (which template.yaml gives the worker from RamenTimerSeconds), else that
// parameter's default, 10.
func timerSeconds(getenv func(string) string) float64 {
	if s, err := strconv.ParseFloat(getenv("LONGRUN_RAMEN_TIMER_SECONDS"), 64); err == nil && s >= 0 && s <= ramen.MaxSeconds {
		return s
	}
	return 10
}
