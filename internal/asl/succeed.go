package asl

// succeedState ends the execution successfully with its (filtered) input.
type succeedState struct {
	base
}

func parseSucceed(f *fields, b base) *succeedState {
	s := &succeedState{base: b}
	s.end = true
	f.noTransition("Succeed")
	if f.jsonata {
		s.output = f.jtmpl("Output")
		return s
	}
	s.inputPath = f.filter("InputPath")
	s.outputPath = f.filter("OutputPath")
	return s
}

func (s *succeedState) enter(cl *call) Step {
	if s.jsonata {
		return s.enterJ(cl)
	}
	eff, err := s.inputPath.apply(cl.input, cl, "InputPath")
	if err != nil {
		return failStep(asStateError(err))
	}
	out, err := s.outputPath.apply(eff, cl, "OutputPath")
	if err != nil {
		return failStep(asStateError(err))
	}
	return s.proceed(cl, out)
}
