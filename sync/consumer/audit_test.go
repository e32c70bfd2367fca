package consumer

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ember-edge/ember/sync/uplink"
)

// auditEnvelope carries audit entries' upstream copies (audit.Shipped):
// entry i has hash h<i> and prev h<i-1>, unless prevs overrides it.
func auditEnvelope(t *testing.T, outbox string, prevs map[uint64]string, indexes ...uint64) []byte {
	t.Helper()
	env := uplink.Envelope{DeviceID: "dev-1", Fleet: "plant", OutboxID: outbox, Kind: uplink.KindAudit, SentAt: time.Now()}
	for _, i := range indexes {
		prev, ok := prevs[i]
		if !ok {
			prev = hashOf(i - 1)
		}
		data := fmt.Sprintf(`{"index":%d,"prev":%q,"action":"model.load","actor":"emberd","ok":true,"seq":%d,"hash":%q}`,
			i, prev, 100+i, hashOf(i))
		env.Records = append(env.Records, uplink.EnvelopeRecord{Seq: 100 + i, Kind: uplink.KindAudit, Priority: 7,
			CreatedAt: time.Unix(int64(i), 0).UTC(), Data: json.RawMessage(data)})
	}
	p, err := uplink.EncodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func hashOf(i uint64) string { return fmt.Sprintf("%064x", i) }

// TestSinkFlagsAuditGaps: a missing entry and an entry whose prev hash
// does not match are flagged (log line, field, counter); the chain state
// survives a restart of the sink; duplicates are not gaps.
func TestSinkFlagsAuditGaps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	m := NewTopicMatcher("plant", uplink.Topics{})
	var logs strings.Builder
	s, err := OpenSink(path, SinkOptions{NoSync: true, Logger: newTextLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	topic := "fleet/v1/plant/dev-1/audit"
	for _, p := range [][]byte{
		auditEnvelope(t, "o1", nil, 3, 4),                           // a consumer may start mid-chain
		auditEnvelope(t, "o1", nil, 4),                              // a duplicate
		auditEnvelope(t, "o1", nil, 6),                              // 5 is missing
		auditEnvelope(t, "o1", map[uint64]string{7: hashOf(99)}, 7), // 7 does not link to 6
		auditEnvelope(t, "o2", nil, 1),                              // another chain (a wiped device)
	} {
		if _, err := s.Handle(topic, p, m); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.AuditGaps != 2 {
		t.Errorf("AuditGaps = %d, want 2", st.AuditGaps)
	}
	s.Close()
	s, err = OpenSink(path, SinkOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Handle(topic, auditEnvelope(t, "o1", nil, 8), m); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var gaps []string
	for _, l := range readLines(t, path) {
		if l.AuditGap != nil {
			gaps = append(gaps, fmt.Sprintf("%d:%d", l.AuditGap.Expected, l.AuditGap.Index))
		}
	}
	if strings.Join(gaps, " ") != "5:6 7:7" {
		t.Errorf("gaps flagged %v, want [5:6 7:7] (entry 8 after a restart continues 7)", gaps)
	}
	if !strings.Contains(logs.String(), "audit chain gap") || !strings.Contains(logs.String(), "expected=5") {
		t.Errorf("no log line of the gap: %s", logs.String())
	}
}

func newTextLogger(w *strings.Builder) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
