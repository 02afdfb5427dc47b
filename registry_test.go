package longrun_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	longrun "github.com/longrun/longrun"
)

func nop(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}

func TestRegistryDefaultIsFirstKind(t *testing.T) {
	t.Parallel()
	r := longrun.NewRegistry()
	if _, ok := r.Lookup(""); ok {
		t.Fatal("an empty registry has a default kind")
	}
	r.Handle("export", nop, longrun.JobOptions{Description: "exports"})
	r.Handle("transcode", nop, longrun.JobOptions{})
	if got := r.Kinds(); !slices.Equal(got, []string{"export", "transcode"}) {
		t.Fatalf("Kinds() = %q, want registration order", got)
	}
	k, ok := r.Lookup("")
	if !ok || k.Name != "export" || k.Options.Description != "exports" {
		t.Fatalf("Lookup(\"\") = %+v, %v; want the first kind", k, ok)
	}
	if k, ok := r.Lookup("transcode"); !ok || k.Name != "transcode" {
		t.Fatalf("Lookup(transcode) = %+v, %v", k, ok)
	}
	if _, ok := r.Lookup("nope"); ok || r.Has("nope") || !r.Has("export") {
		t.Fatal("Lookup/Has of an unknown kind found it")
	}
}

func TestRegistryHandlePanicsOnProgrammingErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, kind string
		job        longrun.Job
		opts       longrun.JobOptions
		want       string
	}{
		{"empty kind", "", nop, longrun.JobOptions{}, "a kind is"},
		{"kind with a space", "my job", nop, longrun.JobOptions{}, "a kind is"},
		{"kind too long", strings.Repeat("a", 65), nop, longrun.JobOptions{}, "a kind is"},
		{"nil job", "a", nil, longrun.JobOptions{}, "nil"},
		{"negative timeout", "a", nop, longrun.JobOptions{Timeout: -1}, "negative"},
		{"bad schema", "a", nop, longrun.JobOptions{InputSchema: json.RawMessage(`{`)}, "InputSchema"},
		{"duplicate", "dup", nop, longrun.JobOptions{}, "already registered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := longrun.NewRegistry()
			r.Handle("dup", nop, longrun.JobOptions{})
			defer func() {
				v := recover()
				if v == nil || !strings.Contains(v.(string), tc.want) {
					t.Fatalf("Handle panicked with %v, want a message with %q", v, tc.want)
				}
			}()
			r.Handle(tc.kind, tc.job, tc.opts)
		})
	}
}

func TestJobInfoTravelsInTheContext(t *testing.T) {
	t.Parallel()
	if _, ok := longrun.JobInfoFromContext(context.Background()); ok {
		t.Fatal("a bare context has a JobInfo")
	}
	want := longrun.JobInfo{ExecutionID: "e1", Kind: "export", Attempt: 2}
	got, ok := longrun.JobInfoFromContext(longrun.WithJobInfo(context.Background(), want))
	if !ok || got != want {
		t.Fatalf("JobInfoFromContext = %+v, %v; want %+v", got, ok, want)
	}
}
