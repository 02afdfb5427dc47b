package console

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/longrun/longrun/internal/asl"
)

// The graph is laid out here, in Go, so the page only draws boxes and lines
// and the layout is tested like any other code. States flow top to bottom in
// ranks (the longest forward path from StartAt); back edges (a retry loop,
// deliver's Wait -> Deliver) are drawn beside the nodes. Map and Parallel
// states are groups: their branches are laid out the same way, inside.

// Layout sizes, in SVG user units.
const (
	nodeW    = 180
	nodeH    = 40
	gapX     = 40
	gapY     = 46
	groupPad = 16
	groupTop = 30 // room for the group's own label
	termD    = 22 // diameter of the start and end circles
)

// Graph is a laid-out state machine: what the page draws.
type Graph struct {
	Width  int     `json:"width"`
	Height int     `json:"height"`
	Nodes  []*Node `json:"nodes"`
	Edges  []Edge  `json:"edges"`
}

// Node is a state (or the start and end markers), with its box. Group nodes
// (Map, Parallel) contain others, whose Parent names them.
type Node struct {
	ID     string `json:"id"` // unique in the graph: the state's path
	Name   string `json:"name"`
	Type   string `json:"type"` // the ASL Type, or "Start" / "End"
	Parent string `json:"parent,omitempty"`
	X      int    `json:"x"`
	Y      int    `json:"y"`
	W      int    `json:"w"`
	H      int    `json:"h"`
	// Status is what the execution did here: "", "visited", "current",
	// "failed" or "aborted".
	Status string `json:"status,omitempty"`
}

// Edge is a transition; Kind is "next", "choice", "default", "catch" or
// "start"/"end" for the markers. Back is set for an edge to an earlier rank.
type Edge struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Kind  string `json:"kind"`
	Back  bool   `json:"back,omitempty"`
	Taken bool   `json:"taken,omitempty"`
}

// definition is the part of an ASL document the graph reads.
type definition struct {
	StartAt string            `json:"StartAt"`
	States  map[string]*state `json:"States"`
}

type state struct {
	Type    string `json:"Type"`
	Next    string `json:"Next"`
	End     bool   `json:"End"`
	Default string `json:"Default"`
	Choices []struct {
		Next string `json:"Next"`
	} `json:"Choices"`
	Catch []struct {
		Next string `json:"Next"`
	} `json:"Catch"`
	Branches      []*definition `json:"Branches"`
	Iterator      *definition   `json:"Iterator"`
	ItemProcessor *definition   `json:"ItemProcessor"`
}

type arc struct{ to, kind string }

func (s *state) arcs() []arc {
	var out []arc
	if s.Next != "" {
		out = append(out, arc{s.Next, "next"})
	}
	for _, c := range s.Choices {
		out = append(out, arc{c.Next, "choice"})
	}
	if s.Default != "" {
		out = append(out, arc{s.Default, "default"})
	}
	for _, c := range s.Catch {
		out = append(out, arc{c.Next, "catch"})
	}
	return out
}

func (s *state) ends() bool {
	return s.End || s.Type == "Succeed" || s.Type == "Fail"
}

// children are a group state's branches: Parallel's Branches, Map's
// ItemProcessor (or the older Iterator).
func (s *state) children() []*definition {
	switch {
	case len(s.Branches) > 0:
		return s.Branches
	case s.ItemProcessor != nil:
		return []*definition{s.ItemProcessor}
	case s.Iterator != nil:
		return []*definition{s.Iterator}
	}
	return nil
}

// Layout lays out an ASL definition (after substitution).
func Layout(def json.RawMessage) (*Graph, error) {
	var d definition
	if err := json.Unmarshal(def, &d); err != nil {
		return nil, fmt.Errorf("read state machine definition: %w", err)
	}
	if d.States[d.StartAt] == nil {
		return nil, fmt.Errorf("state machine definition: StartAt %q is not a state", d.StartAt)
	}
	g := &Graph{}
	w, h := g.place(&d, "", 0, 0, true)
	g.Width, g.Height = w, h
	return g, nil
}

// place lays out the states of d with its top-left corner at (x, y) and
// returns the size it took. IDs of nested states are prefixed by their
// group's, as the same name may appear in two branches.
func (g *Graph) place(d *definition, parent string, x, y int, top bool) (width, height int) {
	prefix := ""
	if parent != "" {
		prefix = parent + "/"
	}
	rank, order := ranks(d)
	// Sizes first: a group is as big as its branches, side by side.
	type box struct{ w, h int }
	sizes := map[string]box{}
	for _, name := range order {
		s := d.States[name]
		kids := s.children()
		if len(kids) == 0 {
			sizes[name] = box{nodeW, nodeH}
			continue
		}
		// Measure with a throwaway graph, then place for real below.
		bw, bh := 0, 0
		for _, k := range kids {
			var tmp Graph
			kw, kh := tmp.place(k, "m", 0, 0, false)
			bw += kw + gapX
			bh = max(bh, kh)
		}
		sizes[name] = box{max(bw-gapX+2*groupPad, nodeW), bh + groupTop + groupPad}
	}
	// Rows by rank.
	var rows [][]string
	for _, name := range order {
		r := rank[name]
		for len(rows) <= r {
			rows = append(rows, nil)
		}
		rows[r] = append(rows[r], name)
	}
	// Horizontal centers, relative: the first row side by side, each later
	// state under the middle of the states that lead to it (so a branch
	// stays in its own column and lines do not cross boxes), pushed right
	// where boxes would overlap.
	preds := map[string][]string{}
	for _, name := range order {
		for _, a := range d.States[name].arcs() {
			if d.States[a.to] != nil && rank[a.to] > rank[name] {
				preds[a.to] = append(preds[a.to], name)
			}
		}
	}
	center := map[string]float64{}
	rowH := make([]int, len(rows))
	for i, row := range rows {
		want := map[string]float64{}
		for j, name := range row {
			if ps := preds[name]; len(ps) > 0 && i > 0 {
				sum := 0.0
				for _, p := range ps {
					sum += center[p]
				}
				want[name] = sum / float64(len(ps))
			} else {
				want[name] = float64(j * (nodeW + gapX))
			}
		}
		slices.SortStableFunc(row, func(a, b string) int { return cmp.Compare(want[a], want[b]) })
		right := math.Inf(-1)
		for _, name := range row {
			w := float64(sizes[name].w)
			c := max(want[name], right+gapX+w/2)
			center[name] = c
			right = c + w/2
			rowH[i] = max(rowH[i], sizes[name].h)
		}
		// A row pushed right by overlaps moves back left by half, to stay
		// balanced under what leads to it.
		if n := len(row); n > 1 {
			shift := (center[row[n-1]] - want[row[n-1]]) / 2
			for _, name := range row {
				center[name] -= shift
			}
		}
	}
	minX, maxX := math.Inf(1), math.Inf(-1)
	for _, name := range order {
		w := float64(sizes[name].w)
		minX, maxX = min(minX, center[name]-w/2), max(maxX, center[name]+w/2)
	}
	width = int(math.Ceil(maxX - minX))
	left := func(name string) int { return x + int(math.Round(center[name]-minX)) - sizes[name].w/2 }
	mid := func(name string) int { return x + int(math.Round(center[name]-minX)) }

	cy := y
	if top {
		g.Nodes = append(g.Nodes, &Node{ID: "__start", Name: "Start", Type: "Start", X: mid(d.StartAt) - termD/2, Y: cy, W: termD, H: termD})
		g.Edges = append(g.Edges, Edge{From: "__start", To: prefix + d.StartAt, Kind: "start"})
		cy += termD + gapY
	}
	var ends []int
	for i, row := range rows {
		for _, name := range row {
			s, b := d.States[name], sizes[name]
			n := &Node{ID: prefix + name, Name: name, Type: s.Type, Parent: parent, X: left(name), Y: cy + (rowH[i]-b.h)/2, W: b.w, H: b.h}
			g.Nodes = append(g.Nodes, n)
			if kids := s.children(); len(kids) > 0 {
				kx := n.X + groupPad
				for bi, k := range kids {
					var tmp Graph
					kw, _ := tmp.place(k, "m", 0, 0, false)
					// Center lone branches in a group wider than they are.
					off := 0
					if len(kids) == 1 {
						off = (b.w - 2*groupPad - kw) / 2
					}
					g.place(k, fmt.Sprintf("%s[%d]", n.ID, bi), kx+off, n.Y+groupTop, false)
					kx += kw + gapX
				}
			}
			for _, a := range s.arcs() {
				if d.States[a.to] == nil {
					continue // asl validate reports these; draw what exists
				}
				g.Edges = append(g.Edges, Edge{From: n.ID, To: prefix + a.to, Kind: a.kind, Back: rank[a.to] <= rank[name]})
			}
			if top && s.ends() {
				g.Edges = append(g.Edges, Edge{From: n.ID, To: "__end", Kind: "end"})
				ends = append(ends, mid(name))
			}
		}
		cy += rowH[i] + gapY
	}
	if top {
		endX := x + width/2
		if len(ends) > 0 {
			sum := 0
			for _, e := range ends {
				sum += e
			}
			endX = sum / len(ends)
		}
		g.Nodes = append(g.Nodes, &Node{ID: "__end", Name: "End", Type: "End", X: endX - termD/2, Y: cy, W: termD, H: termD})
		cy += termD
	} else {
		cy -= gapY
	}
	return width, cy - y
}

// ranks gives each state reachable from StartAt its row: one more than the
// furthest of its forward predecessors. Edges that close a cycle (found by
// depth-first search) do not count. Unreachable states go last, in name
// order, so a definition being written still shows all of its states.
func ranks(d *definition) (map[string]int, []string) {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	back := map[[2]string]bool{}
	var post []string
	var visit func(string)
	visit = func(n string) {
		color[n] = grey
		// Arcs in reverse, so that reverse postorder lists Next before
		// Catch: the happy path comes first in each row.
		arcs := d.States[n].arcs()
		slices.Reverse(arcs)
		for _, a := range arcs {
			if d.States[a.to] == nil {
				continue
			}
			switch color[a.to] {
			case white:
				visit(a.to)
			case grey:
				back[[2]string{n, a.to}] = true
			}
		}
		color[n] = black
		post = append(post, n)
	}
	visit(d.StartAt)
	order := make([]string, 0, len(d.States))
	for i := len(post) - 1; i >= 0; i-- { // reverse postorder is a topological order
		order = append(order, post[i])
	}
	rank := map[string]int{}
	for _, n := range order {
		for _, a := range d.States[n].arcs() {
			if d.States[a.to] == nil || back[[2]string{n, a.to}] {
				continue
			}
			rank[a.to] = max(rank[a.to], rank[n]+1)
		}
	}
	var rest []string
	for n := range d.States {
		if color[n] == white {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	last := 0
	for _, n := range order {
		last = max(last, rank[n])
	}
	for _, n := range rest {
		rank[n] = last + 1
	}
	order = append(order, rest...)
	// Within a row, keep the order states are written in the definition's
	// flow (the topological order), which puts the happy path first.
	return rank, order
}

// Mark lights the path an execution took: the states it entered, the
// transitions between consecutive ones, and the state where it is now (while
// RUNNING) or where it ended badly.
func (g *Graph) Mark(history []asl.HistoryEvent, status string) {
	byName := map[string][]*Node{}
	for _, n := range g.Nodes {
		if n.Type != "Start" && n.Type != "End" {
			byName[n.Name] = append(byName[n.Name], n)
		}
	}
	// A name inside a group may repeat; the history of a state names only
	// the state, so every node of that name is lit.
	taken := map[[2]string]bool{}
	var prev, last string
	failedAt := ""
	for _, ev := range history {
		switch {
		case strings.HasSuffix(ev.Type, "StateEntered"):
			for _, n := range byName[ev.State] {
				n.Status = "visited"
			}
			if prev == "" {
				taken[[2]string{"__start", ev.State}] = true
			} else {
				taken[[2]string{prev, ev.State}] = true
			}
			prev, last = ev.State, ev.State
		case strings.HasSuffix(ev.Type, "Failed") || strings.HasSuffix(ev.Type, "TimedOut"):
			if ev.State != "" {
				failedAt = ev.State
			}
		}
	}
	mark := func(name, s string) {
		for _, n := range byName[name] {
			n.Status = s
		}
	}
	switch status {
	case "RUNNING":
		mark(last, "current")
	case "FAILED", "TIMED_OUT":
		mark(cmp.Or(failedAt, last), "failed")
	case "ABORTED":
		mark(last, "aborted")
	}
	ended := status != "" && status != "RUNNING"
	for i := range g.Edges {
		e := &g.Edges[i]
		from, to := nameOf(g, e.From), nameOf(g, e.To)
		switch {
		case e.Kind == "end":
			e.Taken = ended && from == last
		default:
			e.Taken = taken[[2]string{from, to}]
		}
	}
}

func nameOf(g *Graph, id string) string {
	if id == "__start" || id == "__end" {
		return id
	}
	for _, n := range g.Nodes {
		if n.ID == id {
			return n.Name
		}
	}
	return id
}
