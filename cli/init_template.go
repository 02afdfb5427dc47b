package cli

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// deriveTemplate turns longrun's template.yaml into a new project's: the same
// resources, parameters and policies, so a project deploys what longrun
// deploys, with three differences. The example job's parameter and variable
// (RamenTimerSeconds) are gone; every function gets LONGRUN_FUNCTION, which
// tells the project's one Lambda binary (cmd/lambda, awslambda.Main) which
// function to be; and the description names the project. It works on the
// YAML tree, so comments and CloudFormation tags (!Ref, !Sub, …) survive.
func deriveTemplate(src []byte, name string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a YAML mapping")
	}
	root := doc.Content[0]
	if d := mapValue(root, "Description"); d != nil {
		d.Value = name + " - jobs on longrun (github.com/longrun/longrun): HTTP API -> start -> Step Functions " +
			"(Standard) -> task token through SQS -> worker running this project's jobs -> notify " +
			"(DynamoDB record + signed webhook). longrun's docs/sam.md explains every choice made here."
		d.Style = yaml.FoldedStyle
		d.HeadComment, d.LineComment = "", ""
	}
	params := mapValue(root, "Parameters")
	if params == nil {
		return nil, fmt.Errorf("no Parameters")
	}
	deleteKey(params, "RamenTimerSeconds")
	resources := mapValue(root, "Resources")
	if resources == nil {
		return nil, fmt.Errorf("no Resources")
	}
	functions := 0
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id, res := resources.Content[i].Value, resources.Content[i+1]
		if t := mapValue(res, "Type"); t == nil || t.Value != "AWS::Serverless::Function" {
			continue
		}
		if !strings.HasSuffix(id, "Function") {
			return nil, fmt.Errorf("function %s: the Makefile's build-%%Function rule needs a logical id ending in Function", id)
		}
		props := ensureMap(res, "Properties")
		vars := ensureMap(ensureMap(props, "Environment"), "Variables")
		deleteKey(vars, "LONGRUN_RAMEN_TIMER_SECONDS")
		setScalar(vars, "LONGRUN_FUNCTION", strings.ToLower(strings.TrimSuffix(id, "Function")))
		functions++
	}
	if functions == 0 {
		return nil, fmt.Errorf("no AWS::Serverless::Function")
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return spaceOut(b.Bytes()), nil
}

// spaceOut puts back the blank lines the YAML encoder drops: before each
// top-level section and before each resource (or the comment above it), so
// the file reads like the one it came from.
func spaceOut(src []byte) []byte {
	lines := strings.Split(string(src), "\n")
	out := make([]string, 0, len(lines)+64)
	prevIndent := 0
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if i > 0 && trimmed != "" && (indent == 0 || indent == 2 && prevIndent > 2) {
			out = append(out, "")
		}
		if trimmed != "" {
			prevIndent = indent
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n"))
}

// mapValue returns the value of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// ensureMap returns the mapping under key in m, adding an empty one if missing.
func ensureMap(m *yaml.Node, key string) *yaml.Node {
	if v := mapValue(m, key); v != nil {
		return v
	}
	v := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v
}

func setScalar(m *yaml.Node, key, value string) {
	if v := mapValue(m, key); v != nil {
		*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
		return
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}
