package asl

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// validationCase is one case of testdata/validation.json: a definition and
// every problem Parse must report for it (state and field exactly; the
// message when given).
type validationCase struct {
	Name       string          `json:"name"`
	Definition json.RawMessage `json:"definition"`
	Problems   []Problem       `json:"problems"`
}

func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	var cases []validationCase
	readJSON(t, "testdata/validation.json", &cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse(c.Definition)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse = %v, %v; want a *ValidationError", m, err)
			}
			got := problemKeys(ve.Problems)
			want := problemKeys(c.Problems)
			if !slices.Equal(got, want) {
				t.Fatalf("problems\n got %q\nwant %q\n(%v)", got, want, ve)
			}
			for _, w := range c.Problems {
				if w.Message == "" {
					continue
				}
				found := false
				for _, p := range ve.Problems {
					found = found || (p.State == w.State && p.Field == w.Field && p.Message == w.Message)
				}
				if !found {
					t.Errorf("no problem %s/%s with message %q in %v", w.State, w.Field, w.Message, ve)
				}
			}
		})
	}
}

func problemKeys(ps []Problem) []string {
	keys := make([]string, 0, len(ps))
	for _, p := range ps {
		keys = append(keys, p.State+"|"+p.Field)
	}
	slices.Sort(keys)
	return keys
}

func TestParseRejectsWhatIsNotADefinition(t *testing.T) {
	t.Parallel()
	for _, def := range []string{``, `[]`, `{"StartAt": "A",`, `{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}} {}`} {
		_, err := Parse([]byte(def))
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].State != "" {
			t.Errorf("Parse(%q) = %v, want one top-level problem", def, err)
		}
		if err != nil && !strings.Contains(err.Error(), "invalid state machine definition") {
			t.Errorf("Parse(%q) error %q does not say what is wrong", def, err)
		}
	}
}
