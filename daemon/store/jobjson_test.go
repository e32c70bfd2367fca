package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// appendJob writes what json.Marshal writes, byte for byte, for any job
// whose request is as encoding/json writes it (compact, HTML-escaped).
func FuzzEncodeJob(f *testing.F) {
	f.Add(uint64(1), "alarms", "embedded:plant/a", "", 3, "queued", `{"prompt":"hi"}`, "", "", int64(0), 0, "")
	f.Add(uint64(1<<63), "p<>&\u2028\u2029", "\x00\x1f\"\\\n\r\t", "m\xff\xfe", -7, "failed", `null`, "k\u00e9", "c", int64(1764403200123456789), 2, "boom: \"x\" <y>")
	f.Add(uint64(0), "", "", "qwen", 0, "", `[1,"a",{"b":null}]`, "", "k", int64(-62135596800000000), 0, "\u007f\u0080")
	f.Fuzz(func(t *testing.T, id uint64, pipeline, source, model string, priority int, state, request, key, coalesce string, nanos int64, n int, errText string) {
		req, err := json.Marshal(json.RawMessage(request))
		if err != nil {
			return // requests are JSON; the encoder does not check them
		}
		at := time.Unix(0, nanos).UTC()
		if at.Year() < 0 || at.Year() > 9999 {
			return // outside what time.Time's MarshalJSON accepts
		}
		j := Job{
			ID: id, Pipeline: pipeline, Source: source, Model: model, Priority: priority, State: JobState(state),
			Request: req, Key: key, Coalesce: coalesce, CreatedAt: at, UpdatedAt: at.Add(time.Second),
			Attempts: n, Merged: -n, Error: errText, ResultSeq: id / 2,
		}
		if n%2 == 1 {
			j.NotBefore = at.Add(time.Hour)
		}
		want, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJob(nil, j); !bytes.Equal(got, want) {
			t.Fatalf("appendJob:\n%s\njson.Marshal:\n%s", got, want)
		}
	})
}

func TestEncodeJobWithoutRequestIsNull(t *testing.T) {
	j := Job{ID: 1, Pipeline: "p", CreatedAt: t0, UpdatedAt: t0}
	want, _ := json.Marshal(j)
	if got := appendJob(nil, j); !bytes.Equal(got, want) {
		t.Fatalf("appendJob %s, json.Marshal %s", got, want)
	}
}
