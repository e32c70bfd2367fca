package jobs

// Backlog returns the number of queued jobs per pipeline, as committed:
// what a pipeline's backlog.max bounds. A broker client reads it to hold
// messages its backlog has no room for instead of having them refused.
func (in *Intake) Backlog() (map[string]int, error) { return in.st.Backlog() }
