package asl

// passState passes its input to its output, optionally injecting a fixed
// Result or a Parameters payload.
type passState struct {
	base
	parameters *payload
	result     any
	hasResult  bool
	resultPath *resultPath
}

func parsePass(f *fields, b base) *passState {
	s := &passState{base: b}
	f.transition(&s.base)
	s.addTarget("Next", s.next)
	if f.jsonata {
		s.output = f.jtmpl("Output")
		s.assign = f.assign("Assign")
		return s
	}
	s.inputPath = f.filter("InputPath")
	s.outputPath = f.filter("OutputPath")
	s.parameters = f.payload("Parameters")
	s.result, s.hasResult = f.get("Result")
	s.resultPath = f.resultPath("ResultPath")
	s.assign = f.assign("Assign")
	return s
}

func (s *passState) enter(cl *call) Step {
	if s.jsonata {
		return s.enterJ(cl)
	}
	result, out, err := s.compute(cl)
	if err != nil {
		return failStep(asStateError(err))
	}
	step, serr := withAssign(s.assign, result, cl, s.proceed(cl, out))
	if serr != nil {
		return failStep(serr)
	}
	return step
}

// compute returns the state's result (what Assign's `$` is) and output.
func (s *passState) compute(cl *call) (any, any, error) {
	eff, err := s.inputPath.apply(cl.input, cl, "InputPath")
	if err != nil {
		return nil, nil, err
	}
	if s.parameters != nil {
		if eff, err = s.parameters.eval(eff, cl); err != nil {
			return nil, nil, err
		}
	}
	result := eff
	if s.hasResult {
		result = s.result
	}
	out, err := s.resultPath.apply(cl.input, result)
	if err != nil {
		return nil, nil, err
	}
	out, err = s.outputPath.apply(out, cl, "OutputPath")
	return result, out, err
}
