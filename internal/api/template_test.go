package api

import (
	"slices"
	"testing"

	"github.com/longrun/longrun/internal/template"
)

// TestTemplateRoutesMatch checks that API Gateway (template.yaml) routes
// exactly the routes the server serves, so no route is unreachable on AWS
// and none reaches a function that would answer 404.
func TestTemplateRoutesMatch(t *testing.T) {
	t.Parallel()
	tpl, err := template.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes, err := tpl.Routes()
	if err != nil {
		t.Fatal(err)
	}
	var deployed, served []string
	for _, r := range routes {
		deployed = append(deployed, r.Method+" "+r.Path)
	}
	for _, r := range Routes() {
		served = append(served, r.Method+" "+r.Path)
	}
	slices.Sort(deployed)
	slices.Sort(served)
	if !slices.Equal(deployed, served) {
		t.Fatalf("template.yaml routes\n  %v\nthe server serves\n  %v", deployed, served)
	}
}
