package mqtturl

import (
	"strings"
	"testing"
)

func TestPaho(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"mqtt://broker:1883", "tcp://broker:1883", ""},
		{"mqtts://broker:8883", "ssl://broker:8883", ""},
		{"tcp://10.0.0.5:1883", "tcp://10.0.0.5:1883", ""},
		{"ssl://broker:8883", "ssl://broker:8883", ""},
		{"tls://broker:8883", "tls://broker:8883", ""},
		{"http://broker", "", `scheme "http"`},
		{"tcp://", "", "no host"},
		{"::", "", "missing protocol scheme"},
	} {
		got, err := Paho(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Paho(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Paho(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
