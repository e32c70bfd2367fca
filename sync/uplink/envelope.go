package uplink

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ember-edge/ember/sync/redact"
)

// FormatVersion is the envelope format this package writes and reads.
// A consumer refuses a newer one rather than misreading it; fields are
// only ever added within a version, so a reader ignores unknown ones.
const FormatVersion = 1

// DefaultMaxDecompressed is the largest decompressed envelope
// DecodeEnvelope accepts when given no limit: above the largest
// uplink.batch_bytes (64 MiB), with room for one oversized record.
const DefaultMaxDecompressed = 96 << 20

// Envelope is one MQTT message of records: a batch of one kind, from one
// device, gzip'd JSON (sync/DESIGN.md).
type Envelope struct {
	Format   int    `json:"format"`
	DeviceID string `json:"device_id"`
	Fleet    string `json:"fleet"`
	// OutboxID names the device's outbox: a random id made once per
	// outbox, so that a device whose store was wiped (and whose seq
	// starts again at 1) is not taken for duplicates.
	OutboxID string           `json:"outbox_id"`
	Kind     string           `json:"kind"`
	SentAt   time.Time        `json:"sent_at"`
	Records  []EnvelopeRecord `json:"records"`
	// After and Through are the span of the records' priority class the
	// envelope covers: it holds every shared record of the class in
	// (After, Through] (local records in it do not leave). The collector
	// echoes them in its Ack. Through is 0 in envelopes from devices
	// before confirmed delivery.
	After   uint64 `json:"after,omitempty"`
	Through uint64 `json:"through,omitempty"`
}

// EnvelopeRecord is one record as sent.
type EnvelopeRecord struct {
	Seq       uint64    `json:"seq"`
	Kind      string    `json:"kind"`
	Priority  int       `json:"priority"`
	Pipeline  string    `json:"pipeline,omitempty"`
	JobID     uint64    `json:"job_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Boot      uint64    `json:"boot"`
	// SHA256 is the hex sha256 of Data exactly as it appears in the
	// envelope: the redacted, compact JSON.
	SHA256 string          `json:"sha256"`
	Data   json.RawMessage `json:"data"`
}

// knownKinds are the record kinds an envelope may carry.
var knownKinds = map[string]bool{KindResult: true, KindTelemetry: true, KindDeadLetter: true, KindAudit: true}

// encoder builds envelopes record by record, so a batch can stop at a
// byte bound, and reuses its buffers from batch to batch.
type encoder struct {
	red  *redact.Redactor
	buf  []byte
	n    int
	zbuf bytes.Buffer
	zw   *gzip.Writer
}

func newEncoder(red *redact.Redactor) *encoder {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.DefaultCompression)
	return &encoder{red: red, zw: zw}
}

// begin starts an envelope.
func (e *encoder) begin(device, fleet, outboxID, kind string, sentAt time.Time) {
	e.n = 0
	b := append(e.buf[:0], `{"format":`...)
	b = strconv.AppendInt(b, FormatVersion, 10)
	b = appendField(b, "device_id", device)
	b = appendField(b, "fleet", fleet)
	b = appendField(b, "outbox_id", outboxID)
	b = appendField(b, "kind", kind)
	b = append(b, `,"sent_at":"`...)
	b = sentAt.UTC().AppendFormat(b, time.RFC3339Nano)
	e.buf = append(b, `","records":[`...)
}

// add appends one record, redacted, and returns the envelope's length
// before it, for truncate.
func (e *encoder) add(r Record) int {
	mark := len(e.buf)
	b := e.buf
	if e.n > 0 {
		b = append(b, ',')
	}
	data := e.red.Redact(r.Data)
	sum := sha256.Sum256(data)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = appendField(b, "kind", r.Kind)
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(r.Priority), 10)
	if r.Pipeline != "" {
		b = appendField(b, "pipeline", r.Pipeline)
	}
	if r.JobID != 0 {
		b = append(b, `,"job_id":`...)
		b = strconv.AppendUint(b, r.JobID, 10)
	}
	b = append(b, `,"created_at":"`...)
	b = r.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","boot":`...)
	b = strconv.AppendUint(b, r.Boot, 10)
	b = append(b, `,"sha256":"`...)
	b = hex.AppendEncode(b, sum[:])
	b = append(b, `","data":`...)
	b = append(b, data...)
	e.buf = append(b, '}')
	e.n++
	return mark
}

// truncate drops what was added after mark (one record).
func (e *encoder) truncate(mark int) {
	e.buf = e.buf[:mark]
	e.n--
}

// size is the envelope's uncompressed size once finished (with room
// for the span).
func (e *encoder) size() int { return len(e.buf) + 2 + 64 }

// finish closes the envelope, with the class span (after, through] when
// through is set, and returns it gzip'd, in a new slice.
func (e *encoder) finish(after, through uint64) []byte {
	e.buf = append(e.buf, ']')
	if through > 0 {
		e.buf = append(e.buf, `,"after":`...)
		e.buf = strconv.AppendUint(e.buf, after, 10)
		e.buf = append(e.buf, `,"through":`...)
		e.buf = strconv.AppendUint(e.buf, through, 10)
	}
	e.buf = append(e.buf, '}')
	e.zbuf.Reset()
	e.zw.Reset(&e.zbuf)
	e.zw.Write(e.buf) // writes to a bytes.Buffer do not fail
	e.zw.Close()
	return bytes.Clone(e.zbuf.Bytes())
}

// appendField appends ,"key":"value" with value JSON-escaped.
func appendField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	q, _ := json.Marshal(value) // a string always marshals
	return append(b, q...)
}

// EncodeEnvelope gzips env as the uplink sends it, redacting nothing and
// computing each record's SHA256 from its Data (which must be compact
// JSON for the hash to match what a consumer sees). It serves tests and
// tools; the uplink itself builds envelopes incrementally.
func EncodeEnvelope(env Envelope) ([]byte, error) {
	e := newEncoder(nil)
	e.begin(env.DeviceID, env.Fleet, env.OutboxID, env.Kind, env.SentAt)
	for _, r := range env.Records {
		e.add(Record{Seq: r.Seq, Kind: r.Kind, Priority: r.Priority, Pipeline: r.Pipeline, JobID: r.JobID,
			CreatedAt: r.CreatedAt, Boot: r.Boot, Data: r.Data})
	}
	return e.finish(env.After, env.Through), nil
}

// DecodeEnvelope decompresses and parses one uplink message, refusing
// more than limit decompressed bytes (≤ 0: DefaultMaxDecompressed), and
// verifies it: the format version, the fields a consumer relies on, and
// every record's sha256. Errors wrap ErrMalformed, ErrUnsupportedFormat,
// ErrTooLarge or ErrHashMismatch.
func DecodeEnvelope(payload []byte, limit int64) (*Envelope, error) {
	if limit <= 0 {
		limit = DefaultMaxDecompressed
	}
	zr, err := gzip.NewReader(bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("%w: not gzip: %w", ErrMalformed, err)
	}
	var raw bytes.Buffer
	n, err := raw.ReadFrom(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: gzip: %w", ErrMalformed, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: more than %d bytes decompressed", ErrTooLarge, limit)
	}
	return parseEnvelope(raw.Bytes())
}

// parseEnvelope parses and verifies a decompressed envelope.
func parseEnvelope(data []byte) (*Envelope, error) {
	var probe struct {
		Format *int `json:"format"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if probe.Format == nil {
		return nil, fmt.Errorf("%w: no format", ErrMalformed)
	}
	if *probe.Format != FormatVersion {
		return nil, fmt.Errorf("%w: format %d (this code reads %d)", ErrUnsupportedFormat, *probe.Format, FormatVersion)
	}
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var errs []error
	if env.DeviceID == "" {
		errs = append(errs, errors.New("no device_id"))
	}
	if !knownKinds[env.Kind] {
		errs = append(errs, fmt.Errorf("kind %q is not one of result, telemetry, deadletter, audit", env.Kind))
	}
	if len(env.Records) == 0 {
		errs = append(errs, errors.New("no records"))
	}
	if env.Through > 0 && len(env.Records) > 0 {
		first, last := env.Records[0], env.Records[len(env.Records)-1]
		if env.After >= first.Seq || env.Through < last.Seq {
			errs = append(errs, fmt.Errorf("span (%d, %d] does not hold its records %d..%d", env.After, env.Through, first.Seq, last.Seq))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, errors.Join(errs...))
	}
	for i, r := range env.Records {
		switch {
		case r.Seq == 0:
			return nil, fmt.Errorf("%w: record %d: no seq", ErrMalformed, i)
		case r.Kind != env.Kind:
			return nil, fmt.Errorf("%w: record %d (seq %d): kind %q in a %q envelope", ErrMalformed, i, r.Seq, r.Kind, env.Kind)
		case r.Priority < 0 || r.Priority >= Priorities:
			return nil, fmt.Errorf("%w: record %d (seq %d): priority %d", ErrMalformed, i, r.Seq, r.Priority)
		case env.Through > 0 && r.Priority != env.Records[0].Priority:
			return nil, fmt.Errorf("%w: record %d (seq %d): priority %d in a class %d span", ErrMalformed, i, r.Seq, r.Priority, env.Records[0].Priority)
		case i > 0 && r.Seq <= env.Records[i-1].Seq && env.Through > 0:
			return nil, fmt.Errorf("%w: record %d (seq %d): not after seq %d", ErrMalformed, i, r.Seq, env.Records[i-1].Seq)
		case len(r.Data) == 0:
			return nil, fmt.Errorf("%w: record %d (seq %d): no data", ErrMalformed, i, r.Seq)
		}
		want, err := hex.DecodeString(r.SHA256)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("%w: record %d (seq %d): sha256 %q is not 64 hex digits", ErrMalformed, i, r.Seq, r.SHA256)
		}
		if sum := sha256.Sum256(r.Data); !bytes.Equal(sum[:], want) {
			return nil, fmt.Errorf("%w: record %d (seq %d)", ErrHashMismatch, i, r.Seq)
		}
	}
	return &env, nil
}
