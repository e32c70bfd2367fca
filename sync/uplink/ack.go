package uplink

import (
	"encoding/json"
	"errors"
	"fmt"
)

// AckFormatVersion is the version of the collector's acknowledgement
// (Ack) this package writes and reads.
const AckFormatVersion = 1

// Ack is what the fleet's collector publishes on a device's ack topic
// (Topics.Ack) once it has committed records: for each envelope stored,
// the span of the device's priority class that envelope covered. The
// device moves its confirmed cursor over contiguous spans only
// (sync/DESIGN.md, "Confirmed delivery").
type Ack struct {
	Format   int    `json:"format"`
	DeviceID string `json:"device_id"`
	// OutboxID binds the ack to one outbox: a device ignores acks for
	// another (its state dir was wiped since).
	OutboxID string     `json:"outbox_id"`
	Ranges   []AckRange `json:"ranges"`
}

// AckRange says the fleet stored every shared record of class Priority
// in (After, Through]: an envelope's span (Envelope.After,
// Envelope.Through).
type AckRange struct {
	Priority int    `json:"priority"`
	After    uint64 `json:"after"`
	Through  uint64 `json:"through"`
}

// EncodeAck returns a's JSON.
func EncodeAck(a Ack) ([]byte, error) {
	a.Format = AckFormatVersion
	return json.Marshal(a)
}

// maxAckBytes bounds an ack a device reads: a collector acks at most a
// few hundred envelopes of one device per transaction.
const maxAckBytes = 1 << 20

// DecodeAck parses and checks an ack. Errors wrap ErrMalformed or
// ErrUnsupportedFormat.
func DecodeAck(payload []byte) (*Ack, error) {
	if len(payload) > maxAckBytes {
		return nil, fmt.Errorf("%w: ack of %d bytes", ErrTooLarge, len(payload))
	}
	var a Ack
	if err := json.Unmarshal(payload, &a); err != nil {
		return nil, fmt.Errorf("%w: ack: %w", ErrMalformed, err)
	}
	if a.Format != AckFormatVersion {
		return nil, fmt.Errorf("%w: ack format %d (this code reads %d)", ErrUnsupportedFormat, a.Format, AckFormatVersion)
	}
	var errs []error
	if a.DeviceID == "" || a.OutboxID == "" {
		errs = append(errs, errors.New("no device_id or outbox_id"))
	}
	for i, r := range a.Ranges {
		if r.Priority < 0 || r.Priority >= Priorities || r.Through <= r.After {
			errs = append(errs, fmt.Errorf("range %d: priority %d, (%d, %d]", i, r.Priority, r.After, r.Through))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: ack: %w", ErrMalformed, errors.Join(errs...))
	}
	return &a, nil
}
