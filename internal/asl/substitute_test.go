package asl

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestSubstitute(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, def string
		subs      map[string]string
		want      string
		wantErr   string
	}{
		{"replaces every occurrence", `{"a":"${X}","b":"${X}-${Y}"}`, map[string]string{"X": "1", "Y": "two"}, `{"a":"1","b":"1-two"}`, ""},
		{"escapes for JSON strings", `{"a":"${X}"}`, map[string]string{"X": `say "hi" \ now`}, `{"a":"say \"hi\" \\ now"}`, ""},
		{"leaves intrinsic braces and $ paths alone", `{"f.$":"States.Format('{}', $.a)","p.$":"$.b"}`, map[string]string{}, `{"f.$":"States.Format('{}', $.a)","p.$":"$.b"}`, ""},
		{"names every missing substitution", `{"a":"${B}","b":"${A}","c":"${B}"}`, map[string]string{}, "", "no value for ${A}, ${B}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := Substitute([]byte(c.def), c.subs)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || string(got) != c.want {
				t.Fatalf("got %s, %v; want %s", got, err, c.want)
			}
		})
	}
}

func TestRepoStateMachinesParse(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"longrun.asl.json", "deliver.asl.json"} {
		if _, err := Parse(repoDefinition(t, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestLoadMock(t *testing.T) {
	t.Parallel()
	invoke, err := LoadMock([]byte(`{"A":[{"Return":1},{"Throw":{"Error":"E","Cause":"c"}},{"Return":{"last":true}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ask := func(state string) (string, error) {
		out, err := invoke(context.Background(), &Task{State: state}, "")
		return string(out), err
	}
	if out, err := ask("A"); out != "1" || err != nil {
		t.Errorf("first answer %s %v", out, err)
	}
	var te *TaskError
	if _, err := ask("A"); !errors.As(err, &te) || te.Name != "E" || te.Cause != "c" {
		t.Errorf("second answer %v", err)
	}
	for range 2 {
		if out, err := ask("A"); out != `{"last":true}` || err != nil {
			t.Errorf("the last answer must repeat: %s %v", out, err)
		}
	}
	if _, err := ask("B"); !errors.As(err, &te) || te.Name != ErrTaskFailed {
		t.Errorf("a state without answers: %v", err)
	}

	for _, bad := range []string{
		`[]`,
		`{"A":[{}]}`,
		`{"A":[{"Return":1,"Throw":{"Error":"E"}}]}`,
		`{"A":[{"Throw":{"Cause":"no name"}}]}`,
		`{"A":[{"Retrun":1}]}`,
	} {
		if _, err := LoadMock([]byte(bad)); err == nil {
			t.Errorf("LoadMock(%s): no error", bad)
		}
	}
	if _, err := LoadMock([]byte(`{"A":[{"Return":null}]}`)); err != nil {
		t.Errorf("Return null is an answer: %v", err)
	}
}
