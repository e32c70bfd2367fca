package collector

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ember-edge/ember/sync/consumer"
	"github.com/ember-edge/ember/sync/uplink"
)

// Delivery is one verified envelope as it came off the broker.
type Delivery struct {
	Topic      string
	Payload    []byte // as received (gzip'd)
	Envelope   *uplink.Envelope
	ReceivedAt time.Time
}

// Report is a device's fleet-update report (sync/fleet FORMAT.md,
// "Reported payload") as it came off the broker.
type Report struct {
	DeviceID   string
	Payload    json.RawMessage
	ReceivedAt time.Time
}

// Batch is what a collector stores in one go.
type Batch struct {
	Deliveries []Delivery
	Reports    []Report
}

// Sink stores batches. Store must be atomic and idempotent: when it
// returns nil every record of the batch is durably stored exactly once
// (a record already stored, by (device_id, outbox_id, seq), is not
// stored again); when it returns an error, nothing is acknowledged and
// the collector retries the batch.
type Sink interface {
	Store(ctx context.Context, b Batch) error
}

// FileSink stores into sync/consumer's JSON-lines file: a development
// sink for one collector (its seen set is the file's, not shared).
type FileSink struct {
	S       *consumer.Sink
	Matcher *consumer.TopicMatcher
}

// Store writes each envelope's new records and fsyncs; reports are not
// kept.
func (f FileSink) Store(_ context.Context, b Batch) error {
	for _, d := range b.Deliveries {
		if _, err := f.S.Handle(d.Topic, d.Payload, f.Matcher); err != nil {
			return err
		}
	}
	return nil
}
