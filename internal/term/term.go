// Package term owns how the longrun CLI talks to a person at a terminal: a
// live status line that redraws in place (status, phase, a progress bar,
// elapsed time), tables, and the plain-line fallback when the output is a
// pipe or a file, so scripts and CI logs get one line per change and no
// escape codes.
package term

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/longrun/longrun"
	xterm "golang.org/x/term"
)

// IsTerminal reports whether w is a terminal (an *os.File on a tty).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && xterm.IsTerminal(int(f.Fd()))
}

// width is the terminal's width, 80 when it cannot tell.
func width(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := xterm.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	return 80
}

// Percent rounds a progress percentage for people: whole numbers, never 100
// before the end (99.7 is "99%", not "100%"), never below 0.
func Percent(p float64) int {
	if math.IsNaN(p) || p <= 0 {
		return 0
	}
	if p >= 100 {
		return 100
	}
	return int(math.Floor(p))
}

// Status is what the live line shows.
type Status struct {
	ID      string
	Status  string // RUNNING, SUCCEEDED, ...
	Phase   string // where it is, in words: "waiting for a worker", "working"
	Percent *float64
	Message string
	Start   time.Time
}

// Display shows an execution's status: on a terminal one line redrawn in
// place, elsewhere one plain line per change.
type Display struct {
	w     io.Writer
	live  bool
	clock longrun.Clock

	mu    sync.Mutex
	cur   Status
	last  string // the last plain line, to print changes only
	drawn bool
	frame int
}

// NewDisplay returns a display writing to w; live redraws in place (pass
// IsTerminal(w)). clock is what the elapsed time is measured with.
func NewDisplay(w io.Writer, live bool, clock longrun.Clock) *Display {
	return &Display{w: w, live: live, clock: clock}
}

// Live reports whether the display redraws in place.
func (d *Display) Live() bool { return d.live }

// Update shows s.
func (d *Display) Update(s Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cur = s
	if d.live {
		d.draw()
		return
	}
	line := plainLine(s)
	if line != d.last {
		fmt.Fprintln(d.w, line)
		d.last = line
	}
}

// Tick redraws the live line (the spinner and the elapsed time move even
// when nothing else does); it does nothing in plain mode.
func (d *Display) Tick() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.live && d.cur.Status != "" {
		d.frame++
		d.draw()
	}
}

// Done ends the live line, so what follows starts on a line of its own.
func (d *Display) Done() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.live && d.drawn {
		fmt.Fprint(d.w, "\n")
		d.drawn = false
	}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

const (
	clearLine = "\r\x1b[2K"
	barWidth  = 20
)

func (d *Display) draw() {
	s := d.cur
	icon := spinner[d.frame%len(spinner)]
	switch s.Status {
	case "SUCCEEDED":
		icon = "✓"
	case "RUNNING":
	default:
		icon = "✗"
	}
	parts := []string{icon, s.Status}
	if s.Phase != "" && s.Status == "RUNNING" {
		parts = append(parts, s.Phase)
	}
	if s.Percent != nil {
		p := Percent(*s.Percent)
		fill := p * barWidth / 100
		parts = append(parts, "["+strings.Repeat("█", fill)+strings.Repeat("░", barWidth-fill)+"]", fmt.Sprintf("%3d%%", p))
	}
	parts = append(parts, Elapsed(d.clock.Now().Sub(s.Start)))
	if s.Message != "" {
		parts = append(parts, s.Message)
	}
	line := strings.Join(parts, "  ")
	// Never wrap: a wrapped line cannot be redrawn with \r.
	if max := width(d.w) - 1; utf8.RuneCountInString(line) > max {
		line = string([]rune(line)[:max-1]) + "…"
	}
	fmt.Fprint(d.w, clearLine+line)
	d.drawn = true
}

// plainLine is one line per change: no elapsed time, which changes always.
func plainLine(s Status) string {
	parts := []string{s.ID, s.Status}
	if s.Phase != "" && s.Status == "RUNNING" {
		parts = append(parts, s.Phase)
	}
	if s.Percent != nil {
		parts = append(parts, fmt.Sprintf("%d%%", Percent(*s.Percent)))
	}
	if s.Message != "" {
		parts = append(parts, s.Message)
	}
	return strings.Join(parts, "  ")
}

// Elapsed formats a duration for people: 850ms, 4.2s, 3m05s, 2h07m.
func Elapsed(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// Table writes rows under a header, in aligned columns.
func Table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// ErrorLine is how the CLI reports err: "longrun: " once, however many
// layers of the error already said it (longrun.Error does).
func ErrorLine(err error) string {
	return "longrun: " + strings.ReplaceAll(err.Error(), "longrun: ", "")
}
