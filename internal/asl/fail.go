package asl

import "fmt"

// failState ends the execution as failed, with an error name and cause that
// are literal (Error, Cause) or read from the input (ErrorPath, CausePath:
// a reference path or an intrinsic function).
type failState struct {
	base
	errName, cause     string
	errPath, causePath *path
	errCall, causeCall *intrinsic
	errExpr, causeExpr *jexpr // JSONata
}

func parseFail(f *fields, b base) *failState {
	s := &failState{base: b}
	f.noTransition("Fail")
	if f.jsonata {
		s.errName, s.errExpr = f.jstring("Error")
		s.cause, s.causeExpr = f.jstring("Cause")
		return s
	}
	s.errName, s.errPath, s.errCall = failField(f, "Error", "ErrorPath")
	s.cause, s.causePath, s.causeCall = failField(f, "Cause", "CausePath")
	return s
}

func failField(f *fields, lit, dyn string) (string, *path, *intrinsic) {
	v, _ := f.str(lit)
	src, ok := f.str(dyn)
	if !ok {
		return v, nil, nil
	}
	if f.has(lit) {
		f.problem(dyn, "%s and %s cannot both be set", lit, dyn)
	}
	if isIntrinsic(src) {
		call, err := parseIntrinsic(src)
		if err != nil {
			f.problem(dyn, "%v", err)
		}
		return "", nil, call
	}
	return "", f.checkPath(dyn, src, true, true), nil
}

func (s *failState) enter(cl *call) Step {
	if s.jsonata {
		return s.enterJ(cl)
	}
	errName, err := s.value(cl, s.errName, s.errPath, s.errCall, "ErrorPath")
	if err != nil {
		return failStep(err)
	}
	cause, err := s.value(cl, s.cause, s.causePath, s.causeCall, "CausePath")
	if err != nil {
		return failStep(err)
	}
	return Step{Kind: StepFail, Error: errName, Cause: cause}
}

func (s *failState) value(cl *call, lit string, p *path, in *intrinsic, field string) (string, *stateError) {
	var v any
	var err error
	switch {
	case p != nil:
		v, err = p.get(cl.input, cl)
		if err != nil {
			return "", &stateError{ErrRuntime, fmt.Sprintf("Invalid path '%s' in %s of state '%s': the path selects nothing", p.src, field, s.name)}
		}
	case in != nil:
		if v, err = in.eval(cl.input, cl); err != nil {
			return "", asStateError(err)
		}
	default:
		return lit, nil
	}
	str, ok := v.(string)
	if !ok {
		return "", &stateError{ErrRuntime, fmt.Sprintf("%s of state '%s' must select a string, not a %s", field, s.name, jsonType(v))}
	}
	return str, nil
}
