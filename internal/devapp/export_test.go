package devapp

// OnSweep sets a func the sweeper calls after each sweep, once it waits
// for the next.
func (a *App) OnSweep(f func()) { a.onSweep = f }
