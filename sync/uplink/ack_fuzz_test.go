package uplink

import (
	"errors"
	"testing"
)

func TestDecodeAck(t *testing.T) {
	good, _ := EncodeAck(Ack{DeviceID: "d", OutboxID: "0123456789abcdef", Ranges: []AckRange{{Priority: 9, After: 0, Through: 4}}})
	for _, tc := range []struct {
		name    string
		payload string
		want    error
	}{
		{"good", string(good), nil},
		{"not json", "{", ErrMalformed},
		{"newer format", `{"format":2,"device_id":"d","outbox_id":"x"}`, ErrUnsupportedFormat},
		{"no outbox", `{"format":1,"device_id":"d"}`, ErrMalformed},
		{"empty span", `{"format":1,"device_id":"d","outbox_id":"x","ranges":[{"priority":1,"after":5,"through":5}]}`, ErrMalformed},
		{"bad class", `{"format":1,"device_id":"d","outbox_id":"x","ranges":[{"priority":10,"after":0,"through":5}]}`, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeAck([]byte(tc.payload))
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDecodeAck(f *testing.F) {
	good, _ := EncodeAck(Ack{DeviceID: "d", OutboxID: "x", Ranges: []AckRange{{Priority: 9, After: 1, Through: 4}}})
	f.Add(good)
	f.Add([]byte(`{"format":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAck(b)
		if err != nil {
			return
		}
		for _, r := range a.Ranges {
			if r.Through <= r.After || r.Priority < 0 || r.Priority >= Priorities {
				t.Fatalf("accepted a bad range %+v", r)
			}
		}
	})
}
