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
	s.inputPath = f.filter("InputPath")
	s.outputPath = f.filter("OutputPath")
	s.parameters = f.payload("Parameters")
	s.result, s.hasResult = f.get("Result")
	s.resultPath = f.resultPath("ResultPath")
	return s
}

func (s *passState) enter(cl *call) Step {
	out, err := s.output(cl)
	if err != nil {
		return failStep(asStateError(err))
	}
	return s.proceed(out)
}

func (s *passState) output(cl *call) (any, error) {
	eff, err := s.inputPath.apply(cl.input, cl.ctx, "InputPath")
	if err != nil {
		return nil, err
	}
	if s.parameters != nil {
		if eff, err = s.parameters.eval(eff, cl.ctx); err != nil {
			return nil, err
		}
	}
	result := eff
	if s.hasResult {
		result = s.result
	}
	out, err := s.resultPath.apply(cl.input, result)
	if err != nil {
		return nil, err
	}
	return s.outputPath.apply(out, cl.ctx, "OutputPath")
}
