package uplink

import (
	"maps"
	"time"
)

// Status is a snapshot of the uplink for gRPC, emberctl and metrics.
type Status struct {
	State State
	// Since is when State was entered.
	Since time.Time
	// Backlog is what is not synced yet (read from the outbox on each
	// call); BacklogError says why it is empty when the read failed.
	Backlog      Backlog
	BacklogError string
	// OldestAge is how long the oldest unsynced record has waited.
	OldestAge time.Duration
	// LastSuccess is when a batch was last acknowledged; LastConnected
	// when the broker last accepted a connection.
	LastSuccess, LastConnected time.Time
	// LastError is why the last dial or connection failed.
	LastError string
	// NextAttempt is when the next dial is due, while offline.
	NextAttempt time.Time
	// InFlight is the batches awaiting their PUBACK.
	InFlight int
	// BytesToday are the bytes published this local day (resends
	// included); DailyBudget is the cap (0: none).
	BytesToday, DailyBudget int64
	// BytesSent are the bytes published since Run started.
	BytesSent uint64
	// Batches and records published (resends included) and acknowledged.
	BatchesSent, BatchesAcked, RecordsSent, RecordsAcked uint64
	// RecordsLocal are records passed over because they are classified
	// local; RecordsUnroutable those of a kind with no topic.
	RecordsLocal, RecordsUnroutable uint64
	// DialAttempts counts dials; Connects the successful ones;
	// Reconnects those after a connection was lost.
	DialAttempts, Connects, Reconnects uint64
	// AcksReceived counts the collector's acks applied (confirm:
	// collector); AcksIgnored those refused or for another outbox;
	// Resends the rewinds of a class whose records were not confirmed in
	// time; LastConfirmed when the confirmed cursor last moved.
	AcksReceived, AcksIgnored, Resends uint64
	LastConfirmed                      time.Time
	// Transitions counts state changes by "from->to".
	Transitions map[string]uint64
}

// Status returns the uplink's state and counters. It is safe to call
// from any goroutine.
func (u *Uplink) Status() Status {
	u.mu.Lock()
	st := u.st
	st.Transitions = maps.Clone(u.st.Transitions)
	u.mu.Unlock()
	b, err := u.o.Outbox.SyncBacklog()
	if err != nil {
		st.BacklogError = err.Error()
	}
	st.Backlog = b
	if !b.Oldest.IsZero() {
		st.OldestAge = max(u.o.Clock.Now().Sub(b.Oldest), 0)
	}
	st.DailyBudget = u.o.DailyBudget
	return st
}

// update changes the status under its lock.
func (u *Uplink) update(fn func(st *Status)) {
	u.mu.Lock()
	fn(&u.st)
	u.mu.Unlock()
}
