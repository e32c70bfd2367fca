package audit

import (
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeEntry: any bytes either fail to decode with an error or give
// an entry whose encoding decodes to the same entry.
func FuzzDecodeEntry(f *testing.F) {
	e := Entry{Index: 7, Prev: zeroHash, At: time.Unix(1700000000, 5).UTC(), Boot: 2, Action: "model.load",
		Actor: "uid 0 (pid 1) via unix socket", OK: true, Details: map[string]any{"model": "q", "n": 3, "x": []any{1.5, "a", nil}},
		DeviceID: "dev", Seq: 9}
	good, _ := e.Encode()
	f.Add(good)
	f.Add([]byte(`{"index":1,"prev":"` + zeroHash + `","action":"a"}`))
	f.Add([]byte(`{"index":0}`))
	f.Add([]byte(`{"index":1,"prev":"zz","action":"a"}`))
	f.Add([]byte(`{"index":1,"prev":"` + zeroHash + `","action":"a"} {}`))
	f.Add([]byte(`{"index":18446744073709551615,"prev":"` + zeroHash + `","action":"a","details":{"k":1e400}}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEntry(data)
		if err != nil {
			return
		}
		enc, err := e.Encode()
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		e2, err := DecodeEntry(enc)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the entry:\n%#v\n%#v", e, e2)
		}
	})
}

func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add([]byte(`{"index":3,"hash":"` + zeroHash + `","key":"","sig":""}`))
	f.Add([]byte(`{"index":3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := DecodeCheckpoint(data)
		if err == nil {
			cp.Verify(make([]byte, 32))
		}
	})
}
