package term

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/client"
)

// JSONOutput decides between JSON and text for the CLI's --output flag:
// "json" or "text" as asked, and when not asked, text on a terminal and JSON
// for a pipe or a file, so scripts get JSON without asking.
func JSONOutput(flag string, stdout io.Writer) (bool, error) {
	switch flag {
	case "json":
		return true, nil
	case "text":
		return false, nil
	case "":
		return !IsTerminal(stdout), nil
	}
	return false, fmt.Errorf("--output %q: want json or text", flag)
}

// WaitOptions configure Wait.
type WaitOptions struct {
	// Live redraws one line on Out; otherwise plain lines go to Out.
	Live bool
	Out  io.Writer
	// Interval is how often to poll when the server sends no Retry-After.
	Interval time.Duration
	// Redraw is how often the live line moves (spinner, elapsed); default 100ms.
	Redraw time.Duration
	Clock  longrun.Clock // default longrun.SystemClock
}

// Wait shows the execution until it ends and returns its final record. The
// client honours the server's Retry-After between polls; the live line keeps
// moving in between.
func Wait(ctx context.Context, c *client.Client, id string, o WaitOptions) (*client.Execution, error) {
	if o.Clock == nil {
		o.Clock = longrun.SystemClock{}
	}
	if o.Redraw <= 0 {
		o.Redraw = 100 * time.Millisecond
	}
	d := NewDisplay(o.Out, o.Live, o.Clock)
	defer d.Done()
	stop := make(chan struct{})
	defer close(stop)
	if o.Live {
		go func() {
			t := time.NewTicker(o.Redraw)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					d.Tick()
				}
			}
		}()
	}
	return c.Wait(ctx, id, o.Interval, func(e *client.Execution) { d.Update(StatusOf(e)) })
}

// StatusOf is what the status line shows of an execution: the state its
// state machine is in where the API says (longrun dev), else a phase told
// from the record: no progress yet means no worker has taken the job.
func StatusOf(e *client.Execution) Status {
	s := Status{ID: e.ExecutionID, Status: e.Status, Start: e.StartDate}
	if e.Status == "RUNNING" {
		s.Phase = "waiting for a worker"
	}
	if e.Progress != nil {
		p := e.Progress.Percent
		s.Percent, s.Message = &p, e.Progress.Message
		if e.Status == "RUNNING" {
			s.Phase = "working"
		}
	}
	if e.Status == "RUNNING" && e.State != "" {
		s.Phase = e.State
	}
	if e.Status == "RUNNING" && s.Percent == nil {
		zero := 0.0
		s.Percent = &zero
	}
	return s
}

// Describe writes an execution for people.
func Describe(w io.Writer, e *client.Execution) error {
	rows := [][2]string{{"execution", e.ExecutionID}, {"status", e.Status}}
	if e.Name != "" {
		rows = append(rows, [2]string{"name", e.Name})
	}
	rows = append(rows, [2]string{"started", e.StartDate.Local().Format(time.DateTime)})
	if e.StopDate != nil {
		rows = append(rows, [2]string{"ended", e.StopDate.Local().Format(time.DateTime) + " (" + Elapsed(e.StopDate.Sub(e.StartDate)) + ")"})
	}
	if p := e.Progress; p != nil && e.Status == "RUNNING" {
		rows = append(rows, [2]string{"progress", strings.TrimSpace(fmt.Sprintf("%d%%  %s", Percent(p.Percent), p.Message))})
	}
	if len(e.Input) > 0 {
		rows = append(rows, [2]string{"input", compact(e.Input)})
	}
	if len(e.Output) > 0 {
		rows = append(rows, [2]string{"output", compact(e.Output)})
	}
	if e.Error != "" {
		rows = append(rows, [2]string{"error", e.Error})
	}
	if e.Cause != "" {
		rows = append(rows, [2]string{"cause", e.Cause})
	}
	if e.CallbackURL != "" {
		rows = append(rows, [2]string{"callback", e.CallbackURL})
	}
	if wh := e.Webhook; wh != nil {
		rows = append(rows, [2]string{"webhook", fmt.Sprintf("%s %s, %d attempt(s)", wh.Type, wh.State, len(wh.Attempts))})
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "%-10s %s\n", r[0], r[1]); err != nil {
			return err
		}
	}
	return nil
}

// List writes a page of executions as a table.
func List(w io.Writer, p *client.Page, now time.Time) error {
	if len(p.Executions) == 0 {
		_, err := fmt.Fprintln(w, "no executions")
		return err
	}
	rows := make([][]string, 0, len(p.Executions))
	for _, e := range p.Executions {
		end := now
		if e.StopDate != nil {
			end = *e.StopDate
		}
		rows = append(rows, []string{e.Status, orDash(e.Job), e.ExecutionID, orDash(e.Name), e.StartDate.Local().Format(time.DateTime), Elapsed(end.Sub(e.StartDate))})
	}
	if err := Table(w, []string{"STATUS", "JOB", "EXECUTION", "NAME", "STARTED", "DURATION"}, rows); err != nil {
		return err
	}
	if p.NextToken != "" {
		_, err := fmt.Fprintf(w, "more: --next-token %s\n", p.NextToken)
		return err
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}
