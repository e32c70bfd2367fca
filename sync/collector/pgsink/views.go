package pgsink

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Device is one device as the fleet database knows it: what operators
// check first (`emberctl fleet devices`).
type Device struct {
	ID       string    `json:"device_id"`
	Fleet    string    `json:"fleet"`
	LastSeen time.Time `json:"last_seen"`
	// Records is how many records the collectors stored for it.
	Records int64 `json:"records"`
	// Backlog and Unconfirmed are what its last telemetry reported: records
	// not yet sent, and sent but not yet confirmed. Nil when no telemetry
	// came.
	Backlog     *int64 `json:"backlog,omitempty"`
	Unconfirmed *int64 `json:"unconfirmed,omitempty"`
	// ActiveVersion and UpdatePhase are from its last fleet-update report.
	ActiveVersion *int64 `json:"active_version,omitempty"`
	UpdatePhase   string `json:"update_phase,omitempty"`
}

// Devices lists the devices of fleet (every fleet when empty), most
// recently seen first.
func (s *Sink) Devices(ctx context.Context, fleet string) ([]Device, error) {
	rows, err := s.pool.Query(ctx, `
SELECT device_id, fleet, last_seen, records,
       (last_telemetry->'sync'->>'Records')::bigint, (last_telemetry->'sync'->>'Unconfirmed')::bigint,
       active_version, coalesce(update_phase, '')
FROM ember_devices WHERE $1 = '' OR fleet = $1
ORDER BY last_seen DESC, device_id`, fleet)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		var d Device
		if err := rows.Scan(&d.ID, &d.Fleet, &d.LastSeen, &d.Records, &d.Backlog, &d.Unconfirmed, &d.ActiveVersion, &d.UpdatePhase); err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RecordQuery selects records of one device.
type RecordQuery struct {
	Device string
	// Since keeps records created at or after it; zero keeps all.
	Since time.Time
	// Kind keeps one kind (result, deadletter, telemetry, audit); empty
	// keeps all.
	Kind string
	// Limit bounds the answer; 0 means 1000.
	Limit int
}

// StoredRecord is one record as stored.
type StoredRecord struct {
	DeviceID       string          `json:"device_id"`
	OutboxID       string          `json:"outbox_id"`
	Seq            int64           `json:"seq"`
	Kind           string          `json:"kind"`
	Classification string          `json:"classification"`
	Priority       int             `json:"priority"`
	Pipeline       string          `json:"pipeline,omitempty"`
	JobID          *int64          `json:"job_id,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	ReceivedAt     time.Time       `json:"received_at"`
	Data           json.RawMessage `json:"data"`
}

// Records returns a device's records, oldest first.
func (s *Sink) Records(ctx context.Context, q RecordQuery) ([]StoredRecord, error) {
	if q.Device == "" {
		return nil, fmt.Errorf("records: name a device")
	}
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	rows, err := s.pool.Query(ctx, `
SELECT device_id, outbox_id, seq, kind, class, priority, coalesce(pipeline, ''), job_id, created_at, received_at, data
FROM ember_records
WHERE device_id = $1 AND created_at >= $2 AND ($3 = '' OR kind = $3)
ORDER BY created_at, outbox_id, seq LIMIT $4`, q.Device, q.Since, q.Kind, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("records of %s: %w", q.Device, err)
	}
	defer rows.Close()
	var out []StoredRecord
	for rows.Next() {
		var r StoredRecord
		if err := rows.Scan(&r.DeviceID, &r.OutboxID, &r.Seq, &r.Kind, &r.Classification, &r.Priority, &r.Pipeline, &r.JobID,
			&r.CreatedAt, &r.ReceivedAt, &r.Data); err != nil {
			return nil, fmt.Errorf("records of %s: %w", q.Device, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
