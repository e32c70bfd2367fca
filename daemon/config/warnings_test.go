package config

import (
	"slices"
	"strings"
	"testing"
)

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string // substrings, one per expected warning, in order
	}{
		{"defaults", ``, nil},
		{"external password over tcp", `
mqtt:
  external:
    url: tcp://broker.plant:1883
    username: ember
    password: s3cret
`, []string{"line 5: mqtt.external.url: the broker password is sent unencrypted to tcp://broker.plant:1883"}},
		{"external password over mqtt://", `
mqtt: {external: {url: "mqtt://10.0.0.5:1883", username: ember, password: s3cret}}
`, []string{"mqtt.external.url: the broker password is sent unencrypted to mqtt://10.0.0.5:1883, readable by anyone on the network path; use ssl:// (or mqtts://) with mqtt.external.ca"}},
		{"password in the URL", `
mqtt: {external: {url: "tcp://ember:s3cret@broker:1883"}}
`, []string{"unencrypted to tcp://broker:1883"}},
		{"uplink password over tcp", `
uplink: {url: "tcp://fleet.example.com:1883", fleet: plant-a, username: dev, password: s3cret}
`, []string{"uplink.url: the broker password is sent unencrypted to tcp://fleet.example.com:1883, readable by anyone on the network path; use ssl:// (or mqtts://) with uplink.ca"}},
		{"both", `
mqtt: {external: {url: "tcp://broker:1883", password: a}}
uplink: {url: "mqtt://fleet:1883", fleet: f, password: b}
`, []string{"mqtt.external.url", "uplink.url"}},
		{"TLS", `
mqtt: {external: {url: "ssl://broker:8883", password: a}}
uplink: {url: "mqtts://fleet:8883", fleet: f, password: b}
`, nil},
		{"username without password", `
mqtt: {external: {url: "tcp://broker:1883", username: ember}}
`, nil},
		{"no password", `
uplink: {url: "tcp://fleet:1883", fleet: f}
`, nil},
		{"loopback", `
mqtt: {external: {url: "tcp://127.0.0.1:1883", password: a}}
uplink: {url: "tcp://localhost:1883", fleet: f, password: b}
`, nil},
		{"loopback IPv6", `
mqtt: {external: {url: "tcp://[::1]:1883", password: a}}
`, nil},
		{"libraries in the state dir", `
state_dir: /var/lib/ember
llama: {lib_dir: /var/lib/ember/llama}
`, []string{"llama.lib_dir: /var/lib/ember/llama is inside state_dir /var/lib/ember, which emberd.service mounts noexec"}},
		{"libraries beside the state dir", `
state_dir: /var/lib/ember
llama: {lib_dir: /var/lib/ember-llama}
`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte("version: 1\ndevice_id: d\n"+strings.TrimPrefix(tc.doc, "\n")), "/etc/ember")
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Warnings()
			if len(got) != len(tc.want) {
				t.Fatalf("Warnings() = %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got[i], w)
				}
			}
			if slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "s3cret") }) {
				t.Errorf("a warning repeats the password: %q", got)
			}
		})
	}
}
