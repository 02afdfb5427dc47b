// Package template reads longrun's SAM template (template.yaml) into a small
// model: parameters, conditions, resources, the state machines with their
// DefinitionUri and DefinitionSubstitutions, the HTTP routes of the
// functions' HttpApi events, queue settings, function settings and IAM
// statements. CloudFormation's short tags (!Ref, !GetAtt, !Sub, !Join, !If,
// ...) and their long forms become *Intrinsic values, which Eval resolves:
// parameters from their defaults, resources and pseudo parameters through a
// Resolver the caller passes in, so the local engine (`longrun dev`) can map
// !Ref JobsQueue to its own queue while the tests map it to an emulator's.
//
// It reads what the template says; it does not run the SAM transform.
package template

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is a parsed template. Values in Properties, Conditions, Globals
// and Outputs are nil, bool, int, float64, string, []any, map[string]any or
// *Intrinsic.
type Template struct {
	// Dir is the directory the template was loaded from; DefinitionUri and
	// CodeUri are relative to it. Empty for Parse.
	Dir         string
	fsys        fs.FS // set by LoadFS: Dir is a path in it
	Description string
	Parameters  map[string]Parameter
	Conditions  map[string]any
	Mappings    map[string]any
	// Globals holds SAM's Globals section by kind ("Function", "HttpApi", ...).
	Globals   map[string]map[string]any
	Resources map[string]Resource
	Outputs   map[string]any
}

// Parameter is one entry of Parameters.
type Parameter struct {
	Type string
	// Default is the default value as a string ("" with HasDefault for an
	// empty default); CloudFormation passes every parameter as a string.
	Default    string
	HasDefault bool
	MinValue   *float64
	MaxValue   *float64
}

// Resource is one entry of Resources.
type Resource struct {
	Type       string
	Properties map[string]any
	Metadata   map[string]any
}

// Intrinsic is an intrinsic function: Fn is "Ref", "Condition" or the long
// name ("Fn::GetAtt", "Fn::Sub", ...); Arg is its argument as written, with
// !GetAtt's "Name.Attr" split into a two-element list.
type Intrinsic struct {
	Fn  string
	Arg any
}

// Load reads and parses the template at path.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Dir = filepath.Dir(path)
	return t, nil
}

// LoadFS reads and parses the template name in fsys, for a template built
// into a binary (go:embed); its DefinitionUri paths are read from fsys too.
func LoadFS(fsys fs.FS, name string) (*Template, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	t.fsys, t.Dir = fsys, path.Dir(name)
	return t, nil
}

// Parse parses a template.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("parse template: not a YAML document")
	}
	root, err := convert(doc.Content[0], "")
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	top, ok := root.(map[string]any)
	if !ok {
		return nil, errors.New("parse template: the top level is not a mapping")
	}
	t := &Template{
		Parameters: map[string]Parameter{},
		Conditions: mapping(top["Conditions"]),
		Mappings:   mapping(top["Mappings"]),
		Globals:    map[string]map[string]any{},
		Resources:  map[string]Resource{},
		Outputs:    mapping(top["Outputs"]),
	}
	t.Description, _ = top["Description"].(string)
	for name, v := range mapping(top["Parameters"]) {
		p, err := parameter(v)
		if err != nil {
			return nil, fmt.Errorf("parse template: parameter %s: %w", name, err)
		}
		t.Parameters[name] = p
	}
	for kind, v := range mapping(top["Globals"]) {
		t.Globals[kind] = mapping(v)
	}
	for id, v := range mapping(top["Resources"]) {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("parse template: resource %s is not a mapping", id)
		}
		typ, _ := m["Type"].(string)
		if typ == "" {
			return nil, fmt.Errorf("parse template: resource %s has no Type", id)
		}
		t.Resources[id] = Resource{Type: typ, Properties: mapping(m["Properties"]), Metadata: mapping(m["Metadata"])}
	}
	if len(t.Resources) == 0 {
		return nil, errors.New("parse template: no Resources")
	}
	return t, nil
}

func parameter(v any) (Parameter, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Parameter{}, errors.New("not a mapping")
	}
	p := Parameter{}
	p.Type, _ = m["Type"].(string)
	if d, ok := m["Default"]; ok {
		s, err := scalarString(d)
		if err != nil {
			return Parameter{}, fmt.Errorf("default value: %w", err)
		}
		p.Default, p.HasDefault = s, true
	}
	for key, dst := range map[string]**float64{"MinValue": &p.MinValue, "MaxValue": &p.MaxValue} {
		switch n := m[key].(type) {
		case int:
			f := float64(n)
			*dst = &f
		case float64:
			*dst = &n
		}
	}
	return p, nil
}

// shortTags maps a YAML short tag to its intrinsic function.
func shortTag(tag string) (string, bool) {
	name, ok := strings.CutPrefix(tag, "!")
	if !ok || name == "" || strings.HasPrefix(tag, "!!") {
		return "", false
	}
	switch name {
	case "Ref", "Condition":
		return name, true
	}
	return "Fn::" + name, true
}

// convert turns a YAML node into the template's value model.
func convert(n *yaml.Node, path string) (any, error) {
	if n.Kind == yaml.AliasNode {
		return convert(n.Alias, path)
	}
	if fn, ok := shortTag(n.Tag); ok {
		var arg any
		var err error
		switch n.Kind {
		case yaml.ScalarNode:
			arg = n.Value
		default:
			// The argument is an ordinary node: convert it without the tag.
			c := *n
			c.Tag = ""
			c.Style &^= yaml.TaggedStyle
			arg, err = convert(&c, path)
			if err != nil {
				return nil, err
			}
		}
		if fn == "Fn::GetAtt" {
			if s, ok := arg.(string); ok {
				name, attr, found := strings.Cut(s, ".")
				if !found {
					return nil, fmt.Errorf("%s: !GetAtt %q: want Name.Attribute", path, s)
				}
				arg = []any{name, attr}
			}
		}
		return &Intrinsic{Fn: fn, Arg: arg}, nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return v, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := convert(c, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if key == "<<" {
				return nil, fmt.Errorf("%s: YAML merge keys are not supported", path)
			}
			v, err := convert(n.Content[i+1], joinPath(path, key))
			if err != nil {
				return nil, err
			}
			out[key] = v
		}
		// The long forms: {"Ref": X}, {"Fn::Sub": ...}.
		if len(out) == 1 {
			for k, v := range out {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					if k == "Fn::GetAtt" {
						if s, ok := v.(string); ok {
							name, attr, _ := strings.Cut(s, ".")
							v = []any{name, attr}
						}
					}
					return &Intrinsic{Fn: k, Arg: v}, nil
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: unexpected YAML node kind %d", path, n.Kind)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func mapping(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}

// ResourcesOfType returns the logical ids of the resources of type typ, sorted.
func (t *Template) ResourcesOfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// StateMachine is an AWS::Serverless::StateMachine.
type StateMachine struct {
	LogicalID     string
	Type          string // STANDARD or EXPRESS
	DefinitionURI string // relative to the template's directory
	// Substitutions are the DefinitionSubstitutions as written; see
	// Template.Substitutions for their values.
	Substitutions map[string]any
}

// StateMachines returns the template's state machines, sorted by logical id.
func (t *Template) StateMachines() ([]StateMachine, error) {
	var out []StateMachine
	for _, id := range t.ResourcesOfType("AWS::Serverless::StateMachine") {
		p := t.Resources[id].Properties
		uri, ok := p["DefinitionUri"].(string)
		if !ok {
			return nil, fmt.Errorf("state machine %s: DefinitionUri is not a local path", id)
		}
		typ, _ := p["Type"].(string)
		if typ == "" {
			typ = "STANDARD"
		}
		out = append(out, StateMachine{LogicalID: id, Type: typ, DefinitionURI: uri, Substitutions: mapping(p["DefinitionSubstitutions"])})
	}
	return out, nil
}

// StateMachine returns the state machine with logical id id.
func (t *Template) StateMachine(id string) (StateMachine, error) {
	sms, err := t.StateMachines()
	if err != nil {
		return StateMachine{}, err
	}
	for _, sm := range sms {
		if sm.LogicalID == id {
			return sm, nil
		}
	}
	return StateMachine{}, fmt.Errorf("no state machine %s in the template", id)
}

// Definition reads the state machine's definition file, as written (before
// substitution).
func (t *Template) Definition(sm StateMachine) ([]byte, error) {
	var data []byte
	var err error
	if t.fsys != nil {
		data, err = fs.ReadFile(t.fsys, path.Join(t.Dir, sm.DefinitionURI))
	} else {
		data, err = os.ReadFile(filepath.Join(t.Dir, filepath.FromSlash(sm.DefinitionURI)))
	}
	if err != nil {
		return nil, fmt.Errorf("state machine %s: %w", sm.LogicalID, err)
	}
	return data, nil
}

// Substitutions evaluates the state machine's DefinitionSubstitutions.
func (t *Template) Substitutions(sm StateMachine, r Resolver) (map[string]string, error) {
	out := make(map[string]string, len(sm.Substitutions))
	for name, v := range sm.Substitutions {
		s, err := t.String(v, r)
		if err != nil {
			return nil, fmt.Errorf("state machine %s: substitution %s: %w", sm.LogicalID, name, err)
		}
		out[name] = s
	}
	return out, nil
}

// Function is an AWS::Serverless::Function with Globals.Function applied.
type Function struct {
	LogicalID string
	// Properties are the function's own properties over Globals.Function;
	// Environment.Variables are merged key by key, as SAM does.
	Properties  map[string]any
	BuildMethod string // Metadata.BuildMethod
}

// Timeout returns the function's Timeout as written (an int or an *Intrinsic).
func (f Function) Timeout() any { return f.Properties["Timeout"] }

// Environment returns the function's environment variables as written.
func (f Function) Environment() map[string]any {
	return mapping(mapping(f.Properties["Environment"])["Variables"])
}

// Events returns the function's event sources by name.
func (f Function) Events() map[string]Event {
	out := map[string]Event{}
	for name, v := range mapping(f.Properties["Events"]) {
		m := mapping(v)
		typ, _ := m["Type"].(string)
		out[name] = Event{Type: typ, Properties: mapping(m["Properties"])}
	}
	return out
}

// Event is one entry of a function's Events.
type Event struct {
	Type       string // HttpApi, SQS, EventBridgeRule, ...
	Properties map[string]any
}

// Functions returns the template's functions, sorted by logical id.
func (t *Template) Functions() []Function {
	global := t.Globals["Function"]
	var out []Function
	for _, id := range t.ResourcesOfType("AWS::Serverless::Function") {
		r := t.Resources[id]
		props := make(map[string]any, len(global)+len(r.Properties))
		for k, v := range global {
			props[k] = v
		}
		for k, v := range r.Properties {
			props[k] = v
		}
		vars := map[string]any{}
		for k, v := range mapping(mapping(global["Environment"])["Variables"]) {
			vars[k] = v
		}
		for k, v := range mapping(mapping(r.Properties["Environment"])["Variables"]) {
			vars[k] = v
		}
		if len(vars) > 0 {
			props["Environment"] = map[string]any{"Variables": vars}
		}
		bm, _ := r.Metadata["BuildMethod"].(string)
		out = append(out, Function{LogicalID: id, Properties: props, BuildMethod: bm})
	}
	return out
}

// Function returns the function with logical id id.
func (t *Template) Function(id string) (Function, error) {
	for _, f := range t.Functions() {
		if f.LogicalID == id {
			return f, nil
		}
	}
	return Function{}, fmt.Errorf("no function %s in the template", id)
}

// Route is one HttpApi event: a method and path routed to a function.
type Route struct {
	Method   string // upper case, or ANY
	Path     string // OpenAPI path template: /executions/{id}
	Function string // logical id
	Event    string // the event's name
}

// Routes returns every HttpApi route of every function, sorted by path then
// method.
func (t *Template) Routes() ([]Route, error) {
	var out []Route
	for _, f := range t.Functions() {
		for name, ev := range f.Events() {
			if ev.Type != "HttpApi" {
				continue
			}
			method, _ := ev.Properties["Method"].(string)
			path, _ := ev.Properties["Path"].(string)
			if method == "" || path == "" {
				return nil, fmt.Errorf("function %s: HttpApi event %s needs a literal Method and Path", f.LogicalID, name)
			}
			out = append(out, Route{Method: strings.ToUpper(method), Path: path, Function: f.LogicalID, Event: name})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out, nil
}

// Queue is the SQS settings longrun's queue semantics depend on.
type Queue struct {
	LogicalID         string
	VisibilityTimeout int // seconds; SQS's default 30 when unset
	// MaxReceiveCount and DeadLetterQueue come from RedrivePolicy; 0 and ""
	// without one.
	MaxReceiveCount int
	DeadLetterQueue string // logical id of the dead-letter queue
}

// Queue returns the settings of the AWS::SQS::Queue with logical id id.
// Values given as !Ref to a parameter take its default.
func (t *Template) Queue(id string) (Queue, error) {
	r, ok := t.Resources[id]
	if !ok || r.Type != "AWS::SQS::Queue" {
		return Queue{}, fmt.Errorf("no queue %s in the template", id)
	}
	q := Queue{LogicalID: id, VisibilityTimeout: 30}
	noResources := func(name, attr string) (string, error) {
		return "", fmt.Errorf("queue %s: settings may not depend on %s", id, name)
	}
	if v, ok := r.Properties["VisibilityTimeout"]; ok {
		n, err := t.Int(v, noResources)
		if err != nil {
			return Queue{}, fmt.Errorf("queue %s: VisibilityTimeout: %w", id, err)
		}
		q.VisibilityTimeout = n
	}
	if rp, ok := r.Properties["RedrivePolicy"].(map[string]any); ok {
		n, err := t.Int(rp["maxReceiveCount"], noResources)
		if err != nil {
			return Queue{}, fmt.Errorf("queue %s: RedrivePolicy.maxReceiveCount: %w", id, err)
		}
		q.MaxReceiveCount = n
		if in, ok := rp["deadLetterTargetArn"].(*Intrinsic); ok && in.Fn == "Fn::GetAtt" {
			if args, ok := in.Arg.([]any); ok && len(args) == 2 {
				q.DeadLetterQueue, _ = args[0].(string)
			}
		}
		if q.DeadLetterQueue == "" {
			return Queue{}, fmt.Errorf("queue %s: RedrivePolicy.deadLetterTargetArn must be !GetAtt <queue>.Arn", id)
		}
	}
	return q, nil
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid      string
	Effect   string
	Action   []string
	Resource []any // as written: strings and *Intrinsic
}

// Statements returns the inline IAM statements a function or state machine
// is granted: its SAM Policies (each must be {Statement: [...]}) or, when it
// names an explicit Role (!GetAtt <Role>.Arn), that AWS::IAM::Role's
// inline policies. Managed policies and SAM policy templates
// (DynamoDBCrudPolicy, ...) are errors: they cannot be checked for least
// privilege from the template.
func (t *Template) Statements(id string) ([]Statement, error) {
	r, ok := t.Resources[id]
	if !ok {
		return nil, fmt.Errorf("no resource %s in the template", id)
	}
	var docs []any
	if role, ok := r.Properties["Role"]; ok {
		in, ok := role.(*Intrinsic)
		args, _ := in.Arg.([]any)
		if !ok || in.Fn != "Fn::GetAtt" || len(args) != 2 {
			return nil, fmt.Errorf("%s: Role must be !GetAtt <role>.Arn", id)
		}
		roleID, _ := args[0].(string)
		rr, ok := t.Resources[roleID]
		if !ok || rr.Type != "AWS::IAM::Role" {
			return nil, fmt.Errorf("%s: Role %s is not an AWS::IAM::Role of the template", id, roleID)
		}
		if _, ok := rr.Properties["ManagedPolicyArns"]; ok {
			return nil, fmt.Errorf("role %s: ManagedPolicyArns cannot be checked for least privilege", roleID)
		}
		for i, p := range asList(rr.Properties["Policies"]) {
			doc, ok := mapping(p)["PolicyDocument"]
			if !ok {
				return nil, fmt.Errorf("role %s: Policies[%d] has no PolicyDocument", roleID, i)
			}
			docs = append(docs, doc)
		}
	} else {
		for i, p := range asList(r.Properties["Policies"]) {
			m, ok := p.(map[string]any)
			if !ok || len(m) != 1 || m["Statement"] == nil {
				return nil, fmt.Errorf("%s: Policies[%d] is not an inline {Statement: [...]} (managed policies and SAM policy templates cannot be checked)", id, i)
			}
			docs = append(docs, m)
		}
	}
	var out []Statement
	for _, doc := range docs {
		for i, s := range asList(mapping(doc)["Statement"]) {
			m, ok := s.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: Statement[%d] is not a mapping", id, i)
			}
			st := Statement{Resource: asList(m["Resource"])}
			st.Sid, _ = m["Sid"].(string)
			st.Effect, _ = m["Effect"].(string)
			for _, a := range asList(m["Action"]) {
				s, ok := a.(string)
				if !ok {
					return nil, fmt.Errorf("%s: Statement %q: Action must be literal strings", id, st.Sid)
				}
				st.Action = append(st.Action, s)
			}
			if _, ok := m["NotAction"]; ok {
				return nil, fmt.Errorf("%s: Statement %q: NotAction is not allowed", id, st.Sid)
			}
			out = append(out, st)
		}
	}
	return out, nil
}

func asList(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	}
	return []any{v}
}

// Reference is one !Ref, !GetAtt or ${Name} of a !Sub in the template.
type Reference struct {
	Path   string // where: "Resources.StartFunction.Properties.Environment..."
	Target string // the logical id, parameter or pseudo parameter named
	Attr   string // for !GetAtt and ${Name.Attr}
}

// References lists every reference in Resources, Outputs and Conditions, so
// a test can check that each names something that exists.
func (t *Template) References() []Reference {
	var out []Reference
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				walk(c, joinPath(path, k))
			}
		case []any:
			for i, c := range v {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case *Intrinsic:
			switch v.Fn {
			case "Ref":
				if s, ok := v.Arg.(string); ok {
					out = append(out, Reference{Path: path, Target: s})
				}
			case "Fn::GetAtt":
				if args, ok := v.Arg.([]any); ok && len(args) == 2 {
					name, _ := args[0].(string)
					attr, _ := args[1].(string)
					out = append(out, Reference{Path: path, Target: name, Attr: attr})
				}
			case "Fn::Sub":
				str, vars := subArgs(v.Arg)
				for _, name := range subVariables(str) {
					if _, local := vars[name]; local {
						continue
					}
					target, attr, _ := strings.Cut(name, ".")
					out = append(out, Reference{Path: path, Target: target, Attr: attr})
				}
				for k, c := range vars {
					walk(c, joinPath(path, k))
				}
				return
			}
			walk(v.Arg, path+"."+v.Fn)
		}
	}
	for id, r := range t.Resources {
		walk(r.Properties, "Resources."+id+".Properties")
	}
	for kind, g := range t.Globals {
		walk(g, "Globals."+kind)
	}
	walk(t.Outputs, "Outputs")
	walk(t.Conditions, "Conditions")
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func subArgs(arg any) (string, map[string]any) {
	switch a := arg.(type) {
	case string:
		return a, nil
	case []any:
		if len(a) == 2 {
			s, _ := a[0].(string)
			return s, mapping(a[1])
		}
	}
	return "", nil
}

// subVariables returns the ${Name} and ${Name.Attr} of a !Sub string,
// skipping the ${!Literal} escapes.
func subVariables(s string) []string {
	var out []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return out
		}
		name := s[i+2 : i+j]
		if !strings.HasPrefix(name, "!") {
			out = append(out, strings.TrimSpace(name))
		}
		s = s[i+j+1:]
	}
}

// scalarString renders a YAML scalar the way CloudFormation passes it.
func scalarString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool, int, int64, uint64, float64:
		var b bytes.Buffer
		fmt.Fprint(&b, v)
		return b.String(), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("%T is not a scalar", v)
}
