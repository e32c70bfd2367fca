package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Entry is one link of the audit chain. Its canonical bytes are what
// json.Marshal makes of it (fields in this order, map keys sorted); the
// store keeps exactly those bytes, and the next entry's Prev is their
// SHA-256.
type Entry struct {
	// Index is the entry's place in the chain: 1, 2, 3, … never reused.
	Index uint64 `json:"index"`
	// Prev is the hex SHA-256 of entry Index-1's bytes; 64 zeros for the
	// first entry.
	Prev string `json:"prev"`
	// At is the device's clock and Boot the store's boot number when the
	// entry was written: with Index they order events even when the clock
	// is wrong.
	At   time.Time `json:"at"`
	Boot uint64    `json:"boot"`
	// Action names what was done: "model.load", "inference.generate", …
	Action string `json:"action"`
	// Actor says who acted: "uid 1000 (pid 4242) via unix socket",
	// "tcp 10.0.0.5:51234", "emberd" for the daemon itself, "fleet",
	// "SIGHUP", "mqtt …" for a job.
	Actor string `json:"actor"`
	// OK is the outcome; Error says why it failed.
	OK      bool           `json:"ok"`
	Error   string         `json:"error,omitempty"`
	Details map[string]any `json:"details,omitempty"`
	// DeviceID is the device that wrote the entry.
	DeviceID string `json:"device_id,omitempty"`
	// Seq is the outbox sequence number of the entry's upstream copy; 0
	// when it has none (no uplink configured).
	Seq uint64 `json:"seq,omitempty"`
}

// Shipped is an entry's upstream copy, the data of its outbox record:
// the entry's fields and Hash, the hex SHA-256 of its canonical bytes.
// Redaction may rewrite the copy's strings, so a consumer checks
// continuity (Index, and Prev against the previous copy's Hash) rather
// than recomputing hashes.
type Shipped struct {
	Entry
	Hash string `json:"hash"`
}

// zeroHash is the Prev of the first entry.
var zeroHash = hex.EncodeToString(make([]byte, sha256.Size))

// Encode returns the entry's canonical bytes.
func (e *Entry) Encode() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode audit entry %d: %w", e.Index, err)
	}
	return b, nil
}

// Hash returns the hex SHA-256 of canonical bytes, as the next entry's
// Prev holds it.
func Hash(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// maxEntry bounds what DecodeEntry reads: entries are small, and a
// larger value is not one the daemon wrote.
const maxEntry = 1 << 20

// DecodeEntry parses stored entry bytes. It checks the shape (an index,
// a 64-hex-digit prev hash, an action), not the chain: that is Verify's.
func DecodeEntry(data []byte) (Entry, error) {
	if len(data) > maxEntry {
		return Entry{}, fmt.Errorf("%w: entry of %d bytes", ErrMalformed, len(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var e Entry
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if dec.More() {
		return Entry{}, fmt.Errorf("%w: data after the entry", ErrMalformed)
	}
	if err := e.check(); err != nil {
		return Entry{}, err
	}
	// The bytes were hashed as they are; the value is normalised.
	e.At = e.At.UTC()
	if len(e.Details) == 0 {
		e.Details = nil
	}
	return e, nil
}

func (e *Entry) check() error {
	switch {
	case e.Index == 0:
		return fmt.Errorf("%w: no index", ErrMalformed)
	case !isHash(e.Prev):
		return fmt.Errorf("%w: entry %d: prev is not a hex sha256", ErrMalformed, e.Index)
	case e.Action == "":
		return fmt.Errorf("%w: entry %d: no action", ErrMalformed, e.Index)
	}
	return nil
}

func isHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
