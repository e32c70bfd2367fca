package uplink

import (
	"encoding/json"
	"time"
)

// The record kinds and their topics (Topics).
const (
	KindResult     = "result"
	KindDeadLetter = "deadletter"
	KindTelemetry  = "telemetry"
	KindAudit      = "audit"
)

// ClassLocal is the classification of records that never leave the
// device.
const ClassLocal = "local"

// Priorities is the number of priority classes, 0 (routine) to 9
// (alarms); a class is drained before any lower one.
const Priorities = 10

// Record is one outbox entry. Its fields mirror store.Record in name,
// type and order, so uplink.Record(r) converts a store record.
type Record struct {
	// Seq is global on the device and strictly increasing.
	Seq      uint64 `json:"seq"`
	Kind     string `json:"kind"`
	DeviceID string `json:"device_id,omitempty"`
	Pipeline string `json:"pipeline,omitempty"`
	JobID    uint64 `json:"job_id,omitempty"`
	Priority int    `json:"priority"`
	// Classification is "shared" or "local"; local records never leave.
	Classification string          `json:"classification,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	Boot           uint64          `json:"boot"`
	Data           json.RawMessage `json:"data"`
}

// Backlog describes what is not synced yet. Its fields mirror
// store.SyncBacklog, so uplink.Backlog(b) converts one.
type Backlog struct {
	// Records and Bytes are the unsent records.
	Records uint64
	Bytes   uint64
	// Oldest is the creation time of the oldest unsynced record.
	Oldest time.Time
	// Unconfirmed are records the broker acknowledged but the collector
	// has not confirmed; OldestUnconfirmed the creation time of the
	// oldest.
	Unconfirmed, UnconfirmedBytes uint64
	OldestUnconfirmed             time.Time
	// Confirmed are confirmed records still held (until retention).
	Confirmed uint64
	// DroppedUnconfirmed counts records the store's limits dropped
	// before they were confirmed.
	DroppedUnconfirmed uint64
}

// Outbox is the store as the uplink sees it. *store.Store satisfies it
// through a small adapter that converts the record types.
type Outbox interface {
	// PendingRecords returns up to max records of priority class p that
	// lie after the class's sync cursor, in sequence order.
	PendingRecords(priority, max int) ([]Record, error)
	// MarkSynced moves class p's cursor durably to seq; an older seq is
	// a no-op.
	MarkSynced(priority int, seq uint64) error
	// SyncBacklog returns the count, size and age of unsynced records.
	SyncBacklog() (Backlog, error)
}

// Confirmer is an Outbox with a confirmed cursor per class besides the
// sync cursor (*store.Store through the daemon's adapter). A record is
// unsent after the sync cursor, sent (PUBACK) between the two, and
// confirmed (the collector stored it) up to the confirmed cursor.
type Confirmer interface {
	// Cursors returns class p's sync and confirmed cursors.
	Cursors(priority int) (synced, confirmed uint64, err error)
	// MarkConfirmed moves class p's confirmed cursor durably to seq, but
	// never back and never past the sync cursor, and returns where it is.
	MarkConfirmed(priority int, seq uint64) (uint64, error)
	// Rewind moves class p's sync cursor back to to (never below the
	// confirmed cursor), so that PendingRecords returns the sent but
	// unconfirmed records again, and returns where it is.
	Rewind(priority int, to uint64) (uint64, error)
}

// Settings is a small durable key/value store (*store.Store satisfies
// it). The uplink keeps the bytes sent today and its outbox id there.
type Settings interface {
	// Setting returns the value under key. A key never set comes back as
	// an error matching Options.SettingsNotFound (store.ErrNotFound for
	// daemon/store); any other error is a failure to read, not an absence.
	Setting(key string) ([]byte, error)
	// SetSetting stores value under key, durably when it returns nil.
	SetSetting(key string, value []byte) error
}
