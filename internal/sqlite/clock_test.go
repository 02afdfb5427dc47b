package sqlite_test

import "github.com/longrun/longrun/internal/fakeclock"

type fakeClock = fakeclock.Clock

func newFakeClock() *fakeClock { return fakeclock.New() }
