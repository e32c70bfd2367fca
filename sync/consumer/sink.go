package consumer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ember-edge/ember/sync/uplink"
)

// Line is one record as the sink writes it: one JSON object per line.
type Line struct {
	DeviceID   string    `json:"device_id"`
	OutboxID   string    `json:"outbox_id,omitempty"`
	Seq        uint64    `json:"seq"`
	Kind       string    `json:"kind"`
	Priority   int       `json:"priority"`
	Pipeline   string    `json:"pipeline,omitempty"`
	JobID      uint64    `json:"job_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	Boot       uint64    `json:"boot"`
	SHA256     string    `json:"sha256"`
	Fleet      string    `json:"fleet,omitempty"`
	Topic      string    `json:"topic,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	// Data is the record's data exactly as sent (redacted on the device):
	// its sha256 is SHA256.
	Data json.RawMessage `json:"data"`
	// AuditGap is set on an audit record that does not continue its
	// device's chain (daemon/audit): entries are missing before it, or its
	// prev hash is not the previous entry's hash.
	AuditGap *AuditGap `json:"audit_gap,omitempty"`
}

// AuditGap describes a break in a device's audit chain as received.
type AuditGap struct {
	// Expected is the index that should have come; Index the one that
	// did.
	Expected uint64 `json:"expected"`
	Index    uint64 `json:"index"`
	Reason   string `json:"reason"`
}

// chainKey is one device's audit chain: a wiped state dir gets a new
// outbox id and starts a new chain.
type chainKey struct{ device, outbox string }

// chainLink is the last entry received of a chain.
type chainLink struct {
	index uint64
	hash  string
}

// auditLink reads the chain fields of an audit record's data (an
// audit.Shipped); ok is false for data without them (records written
// before the chain existed).
func auditLink(data []byte) (index uint64, prev, hash string, ok bool) {
	var e struct {
		Index uint64 `json:"index"`
		Prev  string `json:"prev"`
		Hash  string `json:"hash"`
	}
	if json.Unmarshal(data, &e) != nil || e.Index == 0 || e.Hash == "" {
		return 0, "", "", false
	}
	return e.Index, e.Prev, e.Hash, true
}

// continueChain checks an audit record against the chain's last entry and
// advances the chain. The first entry seen of a chain is taken as it is:
// a consumer may start long after the device did.
func (s *Sink) continueChain(k chainKey, data []byte) *AuditGap {
	index, prev, hash, ok := auditLink(data)
	if !ok {
		return nil
	}
	last, known := s.chains[k]
	s.chains[k] = chainLink{index, hash}
	switch {
	case !known:
		return nil
	case index != last.index+1:
		return &AuditGap{Expected: last.index + 1, Index: index,
			Reason: fmt.Sprintf("entries %d to %d are missing", last.index+1, max(index, last.index+1)-1)}
	case prev != last.hash:
		return &AuditGap{Expected: index, Index: index, Reason: fmt.Sprintf("prev hash does not match entry %d's hash", last.index)}
	}
	return nil
}

// Stats count what a sink has seen.
type Stats struct {
	// Messages are envelopes handled; Rejected those refused (malformed,
	// unsupported format, a sha256 mismatch, a device or kind that does
	// not match the topic).
	Messages, Rejected uint64
	// Loaded is the records the file held when the sink opened it;
	// Records were written since; Duplicates dropped as already written.
	Loaded, Records, Duplicates uint64
	// Devices is the number of devices with records in the file.
	Devices int
	// AuditGaps counts audit records written with an AuditGap.
	AuditGaps uint64
}

// SinkOptions tune a Sink.
type SinkOptions struct {
	// MaxDecompressed bounds one envelope decompressed; ≤ 0 is
	// uplink.DefaultMaxDecompressed.
	MaxDecompressed int64
	// NoSync skips the fsync after each envelope: faster, but a crash of
	// the machine may lose records already acknowledged to the broker.
	NoSync bool
	// Now stamps received_at; nil is time.Now.
	Now func() time.Time
	// Logger hears of audit chain gaps; nil discards.
	Logger *slog.Logger
}

// ErrRejected wraps the reason an envelope was refused.
var ErrRejected = errors.New("envelope rejected")

type seenKey struct {
	device, outbox string
	seq            uint64
}

// Sink appends records to a JSON-lines file, once each. It is safe for
// concurrent use.
type Sink struct {
	opts SinkOptions
	path string

	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	enc     *json.Encoder
	seen    map[seenKey]struct{}
	devices map[string]struct{}
	chains  map[chainKey]chainLink
	stats   Stats
}

// OpenSink opens (or creates) the file at path and rebuilds the set of
// records it holds. A torn last line, left by a crash mid-write, is cut
// off (its records were not acknowledged, so the broker delivers them
// again).
func OpenSink(path string, opts SinkOptions) (*Sink, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Sink{opts: opts, path: path, f: f, seen: map[seenKey]struct{}{}, devices: map[string]struct{}{},
		chains: map[chainKey]chainLink{}}
	good, err := s.rebuild()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("cut the torn last line of %s: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	s.w = bufio.NewWriterSize(f, 256<<10)
	s.enc = json.NewEncoder(s.w)
	s.enc.SetEscapeHTML(false) // data stays byte for byte as sent
	return s, nil
}

// rebuild reads the file's records into the seen set and returns the
// length of its whole lines.
func (s *Sink) rebuild() (int64, error) {
	r := bufio.NewReaderSize(s.f, 256<<10)
	var good int64
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return good, nil // a last line without its newline is torn
		}
		if err != nil {
			return 0, err
		}
		var k struct {
			DeviceID string          `json:"device_id"`
			OutboxID string          `json:"outbox_id"`
			Seq      uint64          `json:"seq"`
			Kind     string          `json:"kind"`
			Data     json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(line, &k); err != nil || k.DeviceID == "" || k.Seq == 0 {
			return 0, fmt.Errorf("line at byte %d is not a record: %q", good, truncate(line, 80))
		}
		if k.Kind == uplink.KindAudit {
			if index, _, hash, ok := auditLink(k.Data); ok {
				s.chains[chainKey{k.DeviceID, k.OutboxID}] = chainLink{index, hash}
			}
		}
		s.seen[seenKey{k.DeviceID, k.OutboxID, k.Seq}] = struct{}{}
		s.devices[k.DeviceID] = struct{}{}
		s.stats.Loaded++
		good += int64(len(line))
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// Handle decodes one message from topic (device and kind are taken from
// the topic when m can tell them, and must match the envelope's) and
// writes its new records. It returns how many were new. An envelope that
// is refused returns an error wrapping ErrRejected (acknowledge it: it
// will never be better); any other error is the file's, and the message
// must not be acknowledged.
func (s *Sink) Handle(topic string, payload []byte, m *TopicMatcher) (int, error) {
	env, err := uplink.DecodeEnvelope(payload, s.opts.MaxDecompressed)
	if err == nil && m != nil {
		if device, kind, ok := m.Match(topic); ok {
			switch {
			case device != "" && device != env.DeviceID:
				err = fmt.Errorf("device %q on the topic of device %q", env.DeviceID, device)
			case kind != env.Kind:
				err = fmt.Errorf("kind %q on the %s topic", env.Kind, kind)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Messages++
	if err != nil {
		s.stats.Rejected++
		return 0, fmt.Errorf("%w: %s: %w", ErrRejected, topic, err)
	}
	now := s.opts.Now()
	n := 0
	for _, r := range env.Records {
		k := seenKey{env.DeviceID, env.OutboxID, r.Seq}
		if _, dup := s.seen[k]; dup {
			s.stats.Duplicates++
			continue
		}
		line := Line{DeviceID: env.DeviceID, OutboxID: env.OutboxID, Seq: r.Seq, Kind: r.Kind, Priority: r.Priority,
			Pipeline: r.Pipeline, JobID: r.JobID, CreatedAt: r.CreatedAt, Boot: r.Boot, SHA256: r.SHA256,
			Fleet: env.Fleet, Topic: topic, ReceivedAt: now, Data: r.Data}
		if r.Kind == uplink.KindAudit {
			if line.AuditGap = s.continueChain(chainKey{env.DeviceID, env.OutboxID}, r.Data); line.AuditGap != nil {
				s.stats.AuditGaps++
				s.opts.Logger.Warn("audit chain gap", "device", env.DeviceID, "outbox_id", env.OutboxID,
					"expected", line.AuditGap.Expected, "index", line.AuditGap.Index, "reason", line.AuditGap.Reason)
			}
		}
		if err := s.enc.Encode(line); err != nil {
			return n, fmt.Errorf("write %s: %w", s.path, err)
		}
		s.seen[k] = struct{}{}
		s.devices[env.DeviceID] = struct{}{}
		s.stats.Records++
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := s.w.Flush(); err != nil {
		return n, fmt.Errorf("write %s: %w", s.path, err)
	}
	if !s.opts.NoSync {
		if err := s.f.Sync(); err != nil {
			return n, fmt.Errorf("fsync %s: %w", s.path, err)
		}
	}
	return n, nil
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Devices = len(s.devices)
	return st
}

// Close flushes and closes the file.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.w.Flush()
	if !s.opts.NoSync {
		err = errors.Join(err, s.f.Sync())
	}
	return errors.Join(err, s.f.Close())
}

// TopicMatcher tells the device and kind of a topic from the uplink's
// topic templates.
type TopicMatcher struct {
	fleet     string
	templates []topicTemplate
}

type topicTemplate struct {
	kind   string
	parts  []string // literal segments; "{device}" where the device is
	device int      // index of the device segment, -1 if none
}

// NewTopicMatcher prepares the templates of t (zero: the defaults) for
// fleet. {device} must be a whole topic segment.
func NewTopicMatcher(fleet string, t uplink.Topics) *TopicMatcher {
	if t == (uplink.Topics{}) {
		t = uplink.DefaultTopics
	}
	m := &TopicMatcher{fleet: fleet}
	for _, kt := range [][2]string{{uplink.KindResult, t.Results}, {uplink.KindTelemetry, t.Telemetry},
		{uplink.KindDeadLetter, t.DeadLetters}, {uplink.KindAudit, t.Audit}} {
		kind, tmpl := kt[0], kt[1]
		parts := strings.Split(strings.ReplaceAll(tmpl, "{fleet}", fleet), "/")
		tt := topicTemplate{kind: kind, parts: parts, device: -1}
		for i, p := range parts {
			if p == "{device}" {
				tt.device = i
			}
		}
		m.templates = append(m.templates, tt)
	}
	return m
}

// Filters returns the subscription filters: each template with its
// device segment as +.
func (m *TopicMatcher) Filters() []string {
	var out []string
	for _, t := range m.templates {
		parts := append([]string(nil), t.parts...)
		if t.device >= 0 {
			parts[t.device] = "+"
		}
		out = append(out, strings.Join(parts, "/"))
	}
	return out
}

// Match returns the device and kind of topic; ok is false for a topic of
// no template.
func (m *TopicMatcher) Match(topic string) (device, kind string, ok bool) {
	segs := strings.Split(topic, "/")
next:
	for _, t := range m.templates {
		if len(segs) != len(t.parts) {
			continue
		}
		for i, p := range t.parts {
			if i != t.device && p != segs[i] {
				continue next
			}
		}
		if t.device >= 0 {
			device = segs[t.device]
		}
		return device, t.kind, true
	}
	return "", "", false
}
