package asl

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

var substitution = regexp.MustCompile(`\$\{([^{}]*)\}`)

func substitute(def []byte, subs map[string]string) ([]byte, error) {
	var missing []string
	out := substitution.ReplaceAllFunc(def, func(m []byte) []byte {
		name := string(m[2 : len(m)-1])
		v, ok := subs[name]
		if !ok {
			if !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
			return m
		}
		return []byte(escapeJSONString(v))
	})
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("definition substitutions: no value for ${%s}", strings.Join(missing, "}, ${"))
	}
	return out, nil
}

// escapeJSONString returns s as it must appear between the quotes of a
// JSON string.
func escapeJSONString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a Go string always marshals
	}
	return string(b[1 : len(b)-1])
}
