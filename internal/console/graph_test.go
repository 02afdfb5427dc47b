package console

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/longrun/longrun/internal/asl"
)

func mustLayout(t *testing.T, def string) *Graph {
	t.Helper()
	g, err := Layout(json.RawMessage(def))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func node(t *testing.T, g *Graph, id string) *Node {
	t.Helper()
	for _, n := range g.Nodes {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("no node %q in %+v", id, g.Nodes)
	return nil
}

func overlap(a, b *Node) bool {
	return a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
}

func inside(in, out *Node) bool {
	return in.X >= out.X && in.Y >= out.Y && in.X+in.W <= out.X+out.W && in.Y+in.H <= out.Y+out.H
}

// The repository's own state machines: every state drawn once, no box on
// another, inside the graph's size, and edges for every transition.
func TestLayoutOfTheRepositoryStateMachines(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		file  string
		edges map[[2]string]string
		back  [2]string
	}{
		{"longrun.asl.json", map[[2]string]string{
			{"__start", "Kind"}: "start", {"Kind", "DefaultKind"}: "choice", {"Kind", "JobLimitAsBackstop"}: "choice", {"Kind", "DefaultQueue"}: "choice", {"Kind", "Work"}: "default",
			{"DefaultKind", "JobLimitAsBackstop"}: "next", {"JobLimitAsBackstop", "DefaultQueue"}: "next", {"DefaultQueue", "Work"}: "next",
			{"Work", "Finalize"}: "next", {"Work", "FinalizeFailure"}: "catch",
			{"FinalizeFailure", "FailedHow"}: "next", {"FailedHow", "TimedOut"}: "choice", {"FailedHow", "FailedInWorkflow"}: "choice", {"FailedHow", "Failed"}: "default",
			{"Finalize", "__end"}: "end", {"Failed", "__end"}: "end", {"TimedOut", "__end"}: "end", {"FailedInWorkflow", "__end"}: "end",
		}, [2]string{}},
		{"deliver.asl.json", map[[2]string]string{
			{"Deliver", "Done?"}: "next", {"Done?", "Done"}: "choice", {"Done?", "WaitForRetry"}: "default", {"WaitForRetry", "Deliver"}: "next",
		}, [2]string{"WaitForRetry", "Deliver"}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			def, err := os.ReadFile(filepath.Join("..", "..", "statemachine", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			g := mustLayout(t, string(def))
			for i, a := range g.Nodes {
				if a.X < 0 || a.Y < 0 || a.X+a.W > g.Width || a.Y+a.H > g.Height {
					t.Errorf("%s at %d,%d %dx%d is outside the %dx%d graph", a.ID, a.X, a.Y, a.W, a.H, g.Width, g.Height)
				}
				for _, b := range g.Nodes[i+1:] {
					if overlap(a, b) {
						t.Errorf("%s and %s overlap", a.ID, b.ID)
					}
				}
			}
			got := map[[2]string]Edge{}
			for _, e := range g.Edges {
				got[[2]string{e.From, e.To}] = e
			}
			for k, kind := range tt.edges {
				if e, ok := got[k]; !ok || e.Kind != kind {
					t.Errorf("edge %v: got %+v, want kind %s", k, e, kind)
				}
			}
			for k, e := range got {
				if e.Back != (k == tt.back) {
					t.Errorf("edge %v back=%v", k, e.Back)
				}
				if !e.Back && node(t, g, k[0]).Y >= node(t, g, k[1]).Y {
					t.Errorf("forward edge %v does not go down", k)
				}
			}
		})
	}
}

func TestLayoutDrawsMapAndParallelAsGroups(t *testing.T) {
	t.Parallel()
	g := mustLayout(t, `{"StartAt":"Fan","States":{
		"Fan":{"Type":"Parallel","Next":"Each","Branches":[
			{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"B"},"B":{"Type":"Pass","End":true}}},
			{"StartAt":"C","States":{"C":{"Type":"Pass","End":true}}}]},
		"Each":{"Type":"Map","End":true,"ItemProcessor":{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}}}}`)
	fan, each := node(t, g, "Fan"), node(t, g, "Each")
	for _, id := range []string{"Fan[0]/A", "Fan[0]/B", "Fan[1]/C"} {
		n := node(t, g, id)
		if !inside(n, fan) || n.Parent != "Fan[0]" && n.Parent != "Fan[1]" {
			t.Errorf("%s %+v is not inside its group %+v", id, n, fan)
		}
	}
	if n := node(t, g, "Each[0]/A"); !inside(n, each) {
		t.Errorf("Map's state %+v is not inside %+v", n, each)
	}
	if overlap(node(t, g, "Fan[0]/A"), node(t, g, "Fan[1]/C")) || overlap(fan, each) {
		t.Error("groups or branches overlap")
	}
	if fan.Y+fan.H >= each.Y {
		t.Error("Each is not below Fan")
	}
}

func TestLayoutRefusesWhatIsNotAStateMachine(t *testing.T) {
	t.Parallel()
	for _, def := range []string{`[]`, `{"StartAt":"Nope","States":{}}`, `not json`} {
		if _, err := Layout(json.RawMessage(def)); err == nil {
			t.Errorf("Layout(%s) accepted it", def)
		}
	}
}

func TestMarkLightsThePathTaken(t *testing.T) {
	t.Parallel()
	def, err := os.ReadFile(filepath.Join("..", "..", "statemachine", "longrun.asl.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Every execution the start function begins names its kind: Kind
	// goes straight to Work.
	entered := func(names ...string) []asl.HistoryEvent {
		h := []asl.HistoryEvent{{Type: "ChoiceStateEntered", State: "Kind"}}
		for _, n := range names {
			h = append(h, asl.HistoryEvent{Type: "TaskStateEntered", State: n})
		}
		return h
	}
	failedWork := append(entered("Work"), asl.HistoryEvent{Type: "TaskFailed", State: "Work"})
	failedWork = append(failedWork, entered("FinalizeFailure", "FailedHow", "Failed")[1:]...)
	for _, tt := range []struct {
		name    string
		history []asl.HistoryEvent
		status  string
		want    map[string]string
		taken   [][2]string
	}{
		{"running", entered("Work"), "RUNNING",
			map[string]string{"Work": "current", "Finalize": "", "FinalizeFailure": "", "Failed": ""},
			[][2]string{{"__start", "Kind"}, {"Kind", "Work"}}},
		{"succeeded", entered("Work", "Finalize"), "SUCCEEDED",
			map[string]string{"Work": "visited", "Finalize": "visited", "FinalizeFailure": ""},
			[][2]string{{"__start", "Kind"}, {"Kind", "Work"}, {"Work", "Finalize"}, {"Finalize", "__end"}}},
		{"failed in Work", failedWork, "FAILED",
			map[string]string{"Work": "failed", "FinalizeFailure": "visited", "Failed": "visited", "Finalize": ""},
			[][2]string{{"__start", "Kind"}, {"Kind", "Work"}, {"Work", "FinalizeFailure"}, {"FinalizeFailure", "FailedHow"}, {"FailedHow", "Failed"}, {"Failed", "__end"}}},
		{"stopped", entered("Work"), "ABORTED",
			map[string]string{"Work": "aborted"},
			[][2]string{{"__start", "Kind"}, {"Kind", "Work"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := mustLayout(t, string(def))
			g.Mark(tt.history, tt.status)
			for id, want := range tt.want {
				if got := node(t, g, id).Status; got != want {
					t.Errorf("%s is %q, want %q", id, got, want)
				}
			}
			var taken [][2]string
			for _, e := range g.Edges {
				if e.Taken {
					taken = append(taken, [2]string{e.From, e.To})
				}
			}
			want := map[[2]string]bool{}
			for _, k := range tt.taken {
				want[k] = true
			}
			if len(taken) != len(want) {
				t.Errorf("taken %v, want %v", taken, tt.taken)
			}
			for _, k := range taken {
				if !want[k] {
					t.Errorf("edge %v lit, want %v", k, tt.taken)
				}
			}
		})
	}
}
