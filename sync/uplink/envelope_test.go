package uplink

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ember-edge/ember/sync/redact"
)

func testEnvelope() Envelope {
	ts := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	return Envelope{Format: FormatVersion, DeviceID: "dev-1", Fleet: "plant", OutboxID: "0011223344556677", Kind: KindResult,
		SentAt: ts.UTC(), Records: []EnvelopeRecord{
			{Seq: 7, Kind: KindResult, Priority: 9, Pipeline: "alarms", JobID: 3, CreatedAt: ts, Boot: 2, Data: json.RawMessage(`{"a":"<&>","n":1.50}`)},
			{Seq: 9, Kind: KindResult, Priority: 9, CreatedAt: ts, Boot: 2, Data: json.RawMessage(`"x"`)},
		}}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	in := testEnvelope()
	payload, err := EncodeEnvelope(in)
	if err != nil {
		t.Fatal(err)
	}
	if payload[0] != 0x1f || payload[1] != 0x8b {
		t.Fatal("not gzip")
	}
	out, err := DecodeEnvelope(payload, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out.Format != 1 || out.DeviceID != in.DeviceID || out.Fleet != in.Fleet || out.OutboxID != in.OutboxID ||
		out.Kind != in.Kind || !out.SentAt.Equal(in.SentAt) || len(out.Records) != 2 {
		t.Fatalf("decoded %+v", out)
	}
	for i, r := range out.Records {
		w := in.Records[i]
		if r.Seq != w.Seq || r.Kind != w.Kind || r.Priority != w.Priority || r.Pipeline != w.Pipeline || r.JobID != w.JobID ||
			!r.CreatedAt.Equal(w.CreatedAt) || r.Boot != w.Boot || string(r.Data) != string(w.Data) || len(r.SHA256) != 64 {
			t.Errorf("record %d: got %+v, want %+v", i, r, w)
		}
	}
	// The data is sent byte for byte: no HTML escaping, numbers as written.
	raw := gunzip(t, payload)
	if !bytes.Contains(raw, []byte(`"data":{"a":"<&>","n":1.50}`)) {
		t.Errorf("envelope does not carry the data verbatim:\n%s", raw)
	}
}

func TestEncoderRedactsAndHashesWhatIsSent(t *testing.T) {
	red, err := redact.New([]redact.Rule{{Field: "input.operator"}, {Builtin: "email"}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEncoder(red)
	e.begin("dev-1", "plant", "id", KindResult, time.Now())
	e.add(Record{Seq: 1, Kind: KindResult, Data: []byte(`{ "input": {"operator": "Jane"}, "note": "mail jane@example.com" }`)})
	env, err := DecodeEnvelope(e.finish(0, 0), 0)
	if err != nil {
		t.Fatal(err) // verifies the sha256 against the redacted data
	}
	if got := string(env.Records[0].Data); got != `{"input":{"operator":"[REDACTED]"},"note":"mail [REDACTED]"}` {
		t.Errorf("sent %s", got)
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestDecodeEnvelopeRefuses(t *testing.T) {
	good := testEnvelope()
	goodPayload, _ := EncodeEnvelope(good)
	goodJSON := gunzip(t, goodPayload)
	edit := func(from, to string) []byte {
		return gz(bytes.Replace(goodJSON, []byte(from), []byte(to), 1))
	}
	cases := []struct {
		name    string
		payload []byte
		limit   int64
		want    error
	}{
		{"not gzip", []byte(`{"format":1}`), 0, ErrMalformed},
		{"truncated gzip", goodPayload[:len(goodPayload)-9], 0, ErrMalformed},
		{"not JSON", gz([]byte(`hello`)), 0, ErrMalformed},
		{"no format", gz([]byte(`{"device_id":"d"}`)), 0, ErrMalformed},
		{"newer format", edit(`"format":1`, `"format":2`), 0, ErrUnsupportedFormat},
		{"no device", edit(`"device_id":"dev-1"`, `"device_id":""`), 0, ErrMalformed},
		{"unknown kind", edit(`"kind":"result","sent_at"`, `"kind":"bogus","sent_at"`), 0, ErrMalformed},
		{"no records", gz([]byte(`{"format":1,"device_id":"d","kind":"result","records":[]}`)), 0, ErrMalformed},
		{"zero seq", edit(`"seq":7`, `"seq":0`), 0, ErrMalformed},
		{"record of another kind", edit(`"seq":7,"kind":"result"`, `"seq":7,"kind":"audit"`), 0, ErrMalformed},
		{"priority out of range", edit(`"priority":9`, `"priority":10`), 0, ErrMalformed},
		{"bad sha256", edit(`"sha256":"`, `"sha256":"zz`), 0, ErrMalformed},
		{"data altered", edit(`"n":1.50`, `"n":1.5`), 0, ErrHashMismatch},
		{"too large", goodPayload, 100, ErrTooLarge},
		{"gzip bomb", gz(bytes.Repeat([]byte{' '}, 10<<20)), 1 << 20, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeEnvelope(c.payload, c.limit)
			if !errors.Is(err, c.want) {
				t.Errorf("DecodeEnvelope: %v, want %v", err, c.want)
			}
		})
	}
	// Unknown fields are ignored within a format version.
	if _, err := DecodeEnvelope(edit(`"fleet":`, `"future":[1,2],"fleet":`), 0); err != nil {
		t.Errorf("an added field was refused: %v", err)
	}
}

// FuzzDecodeEnvelope feeds random payloads (and random JSON inside
// valid gzip) to the consumer's decoder: it must never panic, must
// respect its limit, and what it accepts must verify.
func FuzzDecodeEnvelope(f *testing.F) {
	p, _ := EncodeEnvelope(testEnvelope())
	f.Add(p, false)
	f.Add(gunzipF(p), true)
	f.Add([]byte(`{"format":1,"device_id":"d","kind":"result","records":[{"seq":1,"kind":"result","sha256":"`+strings.Repeat("0", 64)+`","data":1}]}`), true)
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, false)
	f.Fuzz(func(t *testing.T, data []byte, wrap bool) {
		payload := data
		if wrap {
			payload = gz(data)
		}
		const limit = 1 << 20
		env, err := DecodeEnvelope(payload, limit)
		if err != nil {
			if env != nil {
				t.Fatal("an envelope with an error")
			}
			return
		}
		if len(env.Records) == 0 || env.DeviceID == "" {
			t.Fatalf("accepted %+v", env)
		}
	})
}

func gunzipF(b []byte) []byte {
	zr, _ := gzip.NewReader(bytes.NewReader(b))
	var out bytes.Buffer
	out.ReadFrom(zr)
	return out.Bytes()
}
