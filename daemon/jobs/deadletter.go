package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/ember-edge/ember/daemon/store"
)

// deadLetter is what a dead-letter record and error message hold.
type deadLetter struct {
	Kind       string `json:"kind"`
	Seq        uint64 `json:"seq"`
	DeviceID   string `json:"device_id"`
	Pipeline   string `json:"pipeline,omitempty"`
	JobID      uint64 `json:"job_id,omitempty"`
	Reason     string `json:"reason"`
	Error      string `json:"error,omitempty"`
	Topic      string `json:"topic,omitempty"`
	Payload    string `json:"payload,omitempty"`
	PayloadB64 []byte `json:"payload_base64,omitempty"`
	// PayloadSize and PayloadSHA256 stand for a payload that is not JSON:
	// no redaction rule can reach inside such bytes, so they stay home.
	PayloadSize   int    `json:"payload_size,omitempty"`
	PayloadSHA256 string `json:"payload_sha256,omitempty"`
	Output        string `json:"output,omitempty"`
	// Input is the message's fields (a job's dead letter) or, for a
	// refused message whose payload is JSON, the payload itself: under
	// input as in a result, so the same redaction field rules reach it.
	Input     any       `json:"input,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// maxDeadPayload bounds the payload kept in a dead letter.
const maxDeadPayload = 64 << 10

// setPayload puts a refused message's payload into its dead letter: a
// JSON payload as JSON (redaction rules apply field by field on the way
// upstream), any other payload as its size and sha256 only, unless raw
// (the pipeline's dead_letter_payload: raw) keeps its bytes.
func setPayload(dl *deadLetter, payload []byte, raw bool) {
	if len(payload) <= maxDeadPayload && utf8.Valid(payload) && json.Valid(payload) {
		dl.Input = json.RawMessage(payload)
		return
	}
	if !raw {
		sum := sha256.Sum256(payload)
		dl.PayloadSize, dl.PayloadSHA256 = len(payload), hex.EncodeToString(sum[:])
		return
	}
	if len(payload) > maxDeadPayload {
		payload = payload[:maxDeadPayload]
	}
	if utf8.Valid(payload) {
		dl.Payload = string(payload)
	} else {
		dl.PayloadB64 = payload
	}
}

// appendDeadLetter records dl as an outbox record of its own (a dead
// letter that ends no job: a refused message, a dropped job).
func (c *core) appendDeadLetter(ctx context.Context, dl deadLetter, rec store.Record) (store.Record, error) {
	rec.Kind, rec.DeviceID = store.KindDeadLetter, c.opts.DeviceID
	r, err := c.st.Append(ctx, rec, func(r *store.Record) error {
		dl.Seq, dl.CreatedAt = r.Seq, r.CreatedAt
		var err error
		r.Data, err = json.Marshal(dl)
		return err
	}, c.opts.Now())
	if err == nil {
		c.stats.deadLetters.Add(1)
	}
	return r, err
}

// errString is an error's text, empty for none.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
