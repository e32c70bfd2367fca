package consumer

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ember-edge/ember/sync/uplink"
)

func envelope(t testing.TB, device, outbox, kind string, seqs ...uint64) []byte {
	t.Helper()
	env := uplink.Envelope{DeviceID: device, Fleet: "plant", OutboxID: outbox, Kind: kind, SentAt: time.Now()}
	for _, s := range seqs {
		env.Records = append(env.Records, uplink.EnvelopeRecord{Seq: s, Kind: kind, Priority: 3,
			CreatedAt: time.Unix(int64(s), 0).UTC(), Data: json.RawMessage(`{"s":` + itoa(s) + `,"html":"<&>"}`)})
	}
	p, err := uplink.EncodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func itoa(s uint64) string { b, _ := json.Marshal(s); return string(b) }

func readLines(t testing.TB, path string) []Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func TestSinkDedupsAndSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	m := NewTopicMatcher("plant", uplink.Topics{})
	s, err := OpenSink(path, SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	topic := "fleet/v1/plant/dev-1/results"
	for _, c := range []struct {
		seqs []uint64
		new  int
	}{{[]uint64{1, 2, 3}, 3}, {[]uint64{2, 3, 4}, 1}, {[]uint64{1, 2, 3, 4}, 0}} {
		n, err := s.Handle(topic, envelope(t, "dev-1", "A", uplink.KindResult, c.seqs...), m)
		if err != nil || n != c.new {
			t.Fatalf("Handle(%v) = %d, %v; want %d new", c.seqs, n, err, c.new)
		}
	}
	// The same seq from another device, or another outbox of the same
	// device (a wiped store), is a different record.
	if n, _ := s.Handle("fleet/v1/plant/dev-2/results", envelope(t, "dev-2", "B", uplink.KindResult, 1), m); n != 1 {
		t.Error("dev-2's seq 1 taken for a duplicate")
	}
	if n, _ := s.Handle(topic, envelope(t, "dev-1", "C", uplink.KindResult, 1), m); n != 1 {
		t.Error("a new outbox's seq 1 taken for a duplicate")
	}
	if st := s.Stats(); st.Loaded != 0 || st.Records != 6 || st.Duplicates != 6 || st.Messages != 5 || st.Devices != 2 {
		t.Errorf("stats %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A crash mid-write leaves a torn line: it is cut, and the records
	// already written are known after the restart.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"device_id":"dev-1","seq":5,"da`)
	f.Close()
	s, err = OpenSink(path, SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Loaded != 6 || st.Devices != 2 {
		t.Errorf("after restart: stats %+v, want 6 loaded from 2 devices", st)
	}
	if n, _ := s.Handle(topic, envelope(t, "dev-1", "A", uplink.KindResult, 3, 4, 5), m); n != 1 {
		t.Errorf("after restart: %d new, want 1 (seq 5)", n)
	}
	s.Close()
	lines := readLines(t, path)
	var got []uint64
	for _, l := range lines {
		if l.DeviceID == "dev-1" && l.OutboxID == "A" {
			got = append(got, l.Seq)
		}
	}
	if !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("dev-1 seqs in file: %v", got)
	}
	l := lines[0]
	if l.Kind != "result" || l.Fleet != "plant" || l.Topic != topic || string(l.Data) != `{"s":1,"html":"<&>"}` || len(l.SHA256) != 64 {
		t.Errorf("line %+v", l)
	}
}

func TestSinkRejects(t *testing.T) {
	s, err := OpenSink(filepath.Join(t.TempDir(), "out.jsonl"), SinkOptions{MaxDecompressed: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := NewTopicMatcher("plant", uplink.Topics{})
	cases := []struct {
		name, topic string
		payload     []byte
	}{
		{"garbage", "fleet/v1/plant/dev-1/results", []byte("hello")},
		{"another device's topic", "fleet/v1/plant/dev-2/results", envelope(t, "dev-1", "A", uplink.KindResult, 1)},
		{"kind off topic", "fleet/v1/plant/dev-1/audit", envelope(t, "dev-1", "A", uplink.KindResult, 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.Handle(c.topic, c.payload, m); !errors.Is(err, ErrRejected) {
				t.Errorf("Handle: %v, want ErrRejected", err)
			}
		})
	}
	if st := s.Stats(); st.Rejected != 3 || st.Records != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestOpenSinkRefusesAForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	os.WriteFile(path, []byte("not a record\n"), 0o600)
	if _, err := OpenSink(path, SinkOptions{}); err == nil {
		t.Error("a file of other lines was taken as a sink")
	}
}

func TestTopicMatcher(t *testing.T) {
	m := NewTopicMatcher("plant", uplink.Topics{
		Results: "fleet/v1/{fleet}/{device}/results", Telemetry: "t/{fleet}/{device}",
		DeadLetters: "fleet/v1/{fleet}/{device}/deadletters", Audit: "audit/{fleet}/all",
	})
	filters := m.Filters()
	slices.Sort(filters)
	if want := []string{"audit/plant/all", "fleet/v1/plant/+/deadletters", "fleet/v1/plant/+/results", "t/plant/+"}; !slices.Equal(filters, want) {
		t.Errorf("filters %v, want %v", filters, want)
	}
	for _, c := range []struct {
		topic, device, kind string
		ok                  bool
	}{
		{"fleet/v1/plant/dev-9/results", "dev-9", "result", true},
		{"t/plant/x", "x", "telemetry", true},
		{"audit/plant/all", "", "audit", true},
		{"fleet/v1/other/dev-9/results", "", "", false},
		{"fleet/v1/plant/dev-9/results/x", "", "", false},
	} {
		d, k, ok := m.Match(c.topic)
		if d != c.device || k != c.kind || ok != c.ok {
			t.Errorf("Match(%q) = %q, %q, %v", c.topic, d, k, ok)
		}
	}
}

// FuzzHandle feeds random payloads through the sink: it must never
// panic, write nothing for a rejected message, and never write a seq
// twice.
func FuzzHandle(f *testing.F) {
	f.Add(envelope(f, "dev-1", "A", uplink.KindResult, 1, 2), "fleet/v1/plant/dev-1/results")
	f.Add([]byte{0x1f, 0x8b}, "fleet/v1/plant/dev-1/results")
	f.Add([]byte("{}"), "x")
	dir := f.TempDir()
	s, err := OpenSink(filepath.Join(dir, "out.jsonl"), SinkOptions{MaxDecompressed: 1 << 20, NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	m := NewTopicMatcher("plant", uplink.Topics{})
	f.Fuzz(func(t *testing.T, payload []byte, topic string) {
		before := s.Stats()
		n, err := s.Handle(topic, payload, m)
		after := s.Stats()
		if err != nil && n != 0 {
			t.Fatalf("%d records written for a rejected message", n)
		}
		if after.Records-before.Records != uint64(n) {
			t.Fatalf("stats moved by %d for %d records", after.Records-before.Records, n)
		}
	})
}
