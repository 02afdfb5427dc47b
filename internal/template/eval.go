package template

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Resolver answers what the template alone cannot: a !Ref to a resource or
// a pseudo parameter (AWS::Region, AWS::AccountId, AWS::StackName, ...),
// with attr "", and a !GetAtt, with the attribute. The local engine answers
// with its own names (a local queue URL for !Ref JobsQueue, an ARN it
// recognises for !GetAtt NotifyFunction.Arn); tests answer with an
// emulator's.
type Resolver func(name, attr string) (string, error)

// noValue is AWS::NoValue: the property or list element it stands for is
// dropped.
type noValue struct{}

// Eval evaluates v: intrinsic functions are applied, parameters take their
// defaults, conditions are evaluated, and resources and pseudo parameters
// go to r. The result is nil, bool, int, float64, string, []any or
// map[string]any.
func (t *Template) Eval(v any, r Resolver) (any, error) {
	out, err := t.eval(v, r)
	if err != nil {
		return nil, err
	}
	if _, ok := out.(noValue); ok {
		return nil, nil
	}
	return out, nil
}

// String evaluates v to a string; numbers and booleans are rendered as
// CloudFormation passes them.
func (t *Template) String(v any, r Resolver) (string, error) {
	out, err := t.Eval(v, r)
	if err != nil {
		return "", err
	}
	return scalarString(out)
}

// Int evaluates v to an integer.
func (t *Template) Int(v any, r Resolver) (int, error) {
	s, err := t.String(v, r)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	return int(f), nil
}

func (t *Template) eval(v any, r Resolver) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, c := range v {
			e, err := t.eval(c, r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, drop := e.(noValue); !drop {
				out[k] = e
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(v))
		for _, c := range v {
			e, err := t.eval(c, r)
			if err != nil {
				return nil, err
			}
			if _, drop := e.(noValue); !drop {
				out = append(out, e)
			}
		}
		return out, nil
	case *Intrinsic:
		return t.intrinsic(v, r)
	}
	return v, nil
}

func (t *Template) intrinsic(in *Intrinsic, r Resolver) (any, error) {
	switch in.Fn {
	case "Ref":
		name, ok := in.Arg.(string)
		if !ok {
			return nil, errors.New("!Ref takes a name")
		}
		return t.ref(name, r)
	case "Fn::GetAtt":
		args, ok := in.Arg.([]any)
		if !ok || len(args) != 2 {
			return nil, errors.New("!GetAtt takes Name.Attribute")
		}
		name, _ := args[0].(string)
		attr, _ := args[1].(string)
		return t.getAtt(name, attr, r)
	case "Fn::Sub":
		return t.sub(in.Arg, r)
	case "Fn::Join":
		args, ok := in.Arg.([]any)
		if !ok || len(args) != 2 {
			return nil, errors.New("!Join takes [delimiter, [values]]")
		}
		delim, _ := args[0].(string)
		list, err := t.eval(args[1], r)
		if err != nil {
			return nil, fmt.Errorf("!Join: %w", err)
		}
		items, ok := list.([]any)
		if !ok {
			return nil, errors.New("!Join: the values are not a list")
		}
		parts := make([]string, len(items))
		for i, it := range items {
			s, err := scalarString(it)
			if err != nil {
				return nil, fmt.Errorf("!Join: %w", err)
			}
			parts[i] = s
		}
		return strings.Join(parts, delim), nil
	case "Fn::Split":
		args, ok := in.Arg.([]any)
		if !ok || len(args) != 2 {
			return nil, errors.New("!Split takes [delimiter, string]")
		}
		delim, _ := args[0].(string)
		s, err := t.String(args[1], r)
		if err != nil {
			return nil, fmt.Errorf("!Split: %w", err)
		}
		var out []any
		for _, p := range strings.Split(s, delim) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::Select":
		args, ok := in.Arg.([]any)
		if !ok || len(args) != 2 {
			return nil, errors.New("!Select takes [index, list]")
		}
		i, err := t.Int(args[0], r)
		if err != nil {
			return nil, fmt.Errorf("!Select: %w", err)
		}
		list, err := t.eval(args[1], r)
		if err != nil {
			return nil, fmt.Errorf("!Select: %w", err)
		}
		items, ok := list.([]any)
		if !ok || i < 0 || i >= len(items) {
			return nil, fmt.Errorf("!Select: index %d out of range", i)
		}
		return items[i], nil
	case "Fn::If":
		args, ok := in.Arg.([]any)
		if !ok || len(args) != 3 {
			return nil, errors.New("!If takes [condition, then, else]")
		}
		name, _ := args[0].(string)
		c, err := t.Condition(name, r)
		if err != nil {
			return nil, err
		}
		if c {
			return t.eval(args[1], r)
		}
		return t.eval(args[2], r)
	case "Fn::FindInMap":
		args, ok := in.Arg.([]any)
		if !ok || len(args) != 3 {
			return nil, errors.New("!FindInMap takes [map, key, key]")
		}
		keys := make([]string, 3)
		for i, a := range args {
			s, err := t.String(a, r)
			if err != nil {
				return nil, fmt.Errorf("!FindInMap: %w", err)
			}
			keys[i] = s
		}
		v, ok := mapping(mapping(t.Mappings[keys[0]])[keys[1]])[keys[2]]
		if !ok {
			return nil, fmt.Errorf("!FindInMap: no %s.%s.%s", keys[0], keys[1], keys[2])
		}
		return t.eval(v, r)
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition":
		return t.condition(in, r)
	}
	return nil, fmt.Errorf("%s is not supported here", in.Fn)
}

func (t *Template) ref(name string, r Resolver) (any, error) {
	if name == "AWS::NoValue" {
		return noValue{}, nil
	}
	if p, ok := t.Parameters[name]; ok {
		if !p.HasDefault {
			return nil, fmt.Errorf("parameter %s has no default", name)
		}
		return p.Default, nil
	}
	if _, ok := t.Resources[name]; !ok && !strings.HasPrefix(name, "AWS::") {
		return nil, fmt.Errorf("!Ref %s: no such parameter or resource", name)
	}
	s, err := r(name, "")
	if err != nil {
		return nil, fmt.Errorf("!Ref %s: %w", name, err)
	}
	return s, nil
}

func (t *Template) getAtt(name, attr string, r Resolver) (any, error) {
	if _, ok := t.Resources[name]; !ok {
		return nil, fmt.Errorf("!GetAtt %s.%s: no such resource", name, attr)
	}
	s, err := r(name, attr)
	if err != nil {
		return nil, fmt.Errorf("!GetAtt %s.%s: %w", name, attr, err)
	}
	return s, nil
}

func (t *Template) sub(arg any, r Resolver) (any, error) {
	str, vars := subArgs(arg)
	if str == "" {
		if _, ok := arg.(string); !ok {
			return nil, errors.New("!Sub takes a string or [string, {vars}]")
		}
	}
	var b strings.Builder
	s := str
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("!Sub %q: unterminated ${", str)
		}
		b.WriteString(s[:i])
		name := strings.TrimSpace(s[i+2 : i+j])
		s = s[i+j+1:]
		if lit, ok := strings.CutPrefix(name, "!"); ok {
			b.WriteString("${" + lit + "}")
			continue
		}
		var v any
		var err error
		if local, ok := vars[name]; ok {
			v, err = t.eval(local, r)
		} else if target, attr, dotted := strings.Cut(name, "."); dotted {
			v, err = t.getAtt(target, attr, r)
		} else {
			v, err = t.ref(name, r)
		}
		if err != nil {
			return nil, fmt.Errorf("!Sub %q: %w", str, err)
		}
		vs, err := scalarString(v)
		if err != nil {
			return nil, fmt.Errorf("!Sub %q: ${%s}: %w", str, name, err)
		}
		b.WriteString(vs)
	}
	return b.String(), nil
}

// Condition evaluates the named entry of Conditions.
func (t *Template) Condition(name string, r Resolver) (bool, error) {
	c, ok := t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	v, err := t.condition(c, r)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	return v, nil
}

func (t *Template) condition(v any, r Resolver) (bool, error) {
	in, ok := v.(*Intrinsic)
	if !ok {
		// {Condition: Name} inside !And/!Or/!Not is a one-key mapping.
		if m, ok := v.(map[string]any); ok && len(m) == 1 {
			if name, ok := m["Condition"].(string); ok {
				return t.Condition(name, r)
			}
		}
		return false, fmt.Errorf("%v is not a condition", v)
	}
	args, _ := in.Arg.([]any)
	switch in.Fn {
	case "Condition":
		name, _ := in.Arg.(string)
		return t.Condition(name, r)
	case "Fn::Equals":
		if len(args) != 2 {
			return false, errors.New("!Equals takes two values")
		}
		a, err := t.String(args[0], r)
		if err != nil {
			return false, err
		}
		b, err := t.String(args[1], r)
		if err != nil {
			return false, err
		}
		return a == b, nil
	case "Fn::Not":
		if len(args) != 1 {
			return false, errors.New("!Not takes one condition")
		}
		c, err := t.condition(args[0], r)
		return !c, err
	case "Fn::And", "Fn::Or":
		and := in.Fn == "Fn::And"
		for _, a := range args {
			c, err := t.condition(a, r)
			if err != nil {
				return false, err
			}
			if c != and {
				return c, nil
			}
		}
		return and, nil
	}
	return false, fmt.Errorf("%s is not a condition function", in.Fn)
}
