package e2e_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/uplink"
)

// TestNothingPlantedLeavesTheDevice sends random messages with planted
// values (e-mail addresses, phone numbers, IPv4 addresses, serial
// numbers, a secret pattern, a named field) through every path a record
// takes upstream — results, dead letters of JSON and of non-JSON
// payloads, a local pipeline — and reads every byte the fleet's broker
// received: no planted value may be among them, and no local record.
func TestNothingPlantedLeavesTheDevice(t *testing.T) {
	const (
		fleet    = "plant-a"
		messages = 60
	)
	rng := rand.New(rand.NewPCG(crashSeed, 11))
	mq := testkit.StartMosquitto(t)
	observer := mqttClient(t, mq.Addr, "fleet-observer")
	wire := subscribe(t, observer, "fleet/v1/#")

	d := newEmberd(t, daemonConfig{Extra: fmt.Sprintf(`uplink:
  url: %s
  fleet: %s
  backoff: {min: 100ms, max: 500ms}
redact:
  - {builtin: email}
  - {builtin: phone}
  - {builtin: ipv4}
  - {builtin: serial}
  - {pattern: "SECRET-[0-9]+"}
  - {field: input.operator}
pipelines:
  - {name: readings, match: "plant/readings/+", prompt: "Note: {{.note}}", max_tokens: 2}
  - {name: strict, match: "plant/strict/+", fields: {code: alarm.code}, prompt: "Alarm {{.code}}", max_tokens: 2}
  - {name: texts, match: "plant/texts/+", decode: text, prompt: "{{.text}}", max_tokens: 2}
  - {name: vault, match: "plant/vault/+", decode: text, classification: local, prompt: "{{.text}}", max_tokens: 2}
`, mq.URL(), fleet)})
	plc := mqttClient(t, d.MQTTAddr, "plc-planted")

	var planted []string
	plant := func() string {
		var v string
		switch rng.IntN(5) {
		case 0:
			v = fmt.Sprintf("tech%d@plant-%d.example.com", rng.IntN(1e6), rng.IntN(100))
		case 1:
			v = fmt.Sprintf("+81 90 %04d %04d", rng.IntN(1e4), rng.IntN(1e4))
		case 2:
			v = fmt.Sprintf("10.%d.%d.%d", rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
		case 3:
			v = fmt.Sprintf("SECRET-%d", 1000+rng.IntN(1e6))
		default:
			v = fmt.Sprintf("SN-%c%c%06d", 'A'+rng.IntN(26), 'A'+rng.IntN(26), rng.IntN(1e6))
		}
		planted = append(planted, v)
		return v
	}
	var vault []string // values only the local pipeline saw, unredacted
	for i := range messages {
		var topic string
		var payload []byte
		switch rng.IntN(5) {
		case 0: // a result, its input carrying the values
			operator := fmt.Sprintf("Operator %d %s", rng.IntN(1e6), letters(rng, 8))
			planted = append(planted, operator)
			doc := map[string]any{"note": "check " + plant(), "operator": operator,
				"nested": map[string]any{"contact": plant(), "list": []any{plant(), rng.IntN(100)}}}
			payload, _ = json.Marshal(doc)
			topic = fmt.Sprintf("plant/readings/m%d", i)
		case 1: // refused (no alarm.code): a dead letter with a JSON payload
			operator := fmt.Sprintf("Operator %d %s", rng.IntN(1e6), letters(rng, 8))
			planted = append(planted, operator) // only the field rule knows it
			doc := map[string]any{"alarm": map[string]any{"text": "call " + plant()}, "operator": operator}
			payload, _ = json.Marshal(doc)
			topic = fmt.Sprintf("plant/strict/m%d", i)
		case 2: // refused (not JSON): a dead letter of a payload no rule can read
			payload = []byte("{broken " + plant() + " " + plant())
			topic = fmt.Sprintf("plant/strict/m%d", i)
		case 3: // refused (not UTF-8) by a text pipeline
			payload = append([]byte("serial "+plant()+" "), 0xff, 0xfe)
			topic = fmt.Sprintf("plant/texts/m%d", i)
		default: // local: never leaves, redacted or not
			v := fmt.Sprintf("recipe-%d-%s", rng.IntN(1e6), letters(rng, 6))
			vault = append(vault, v)
			payload = []byte("keep " + v)
			topic = fmt.Sprintf("plant/vault/m%d", i)
		}
		publish(t, plc, topic, payload)
	}
	d.waitIdle(60 * time.Second)

	// Everything shared has left once the device's sync backlog is empty.
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _, err := d.ctl("sync", "status", "-o", "json")
		var st struct {
			Records *int `json:"backlog_records"`
		}
		if err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Records != nil && *st.Records == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the uplink did not drain within 60s: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the last envelopes reach the observer

	wire.mu.Lock()
	msgs := append([]message(nil), wire.msgs...)
	wire.mu.Unlock()
	kinds := map[string]int{}
	var seen strings.Builder
	for _, m := range msgs {
		seen.Write(m.Payload)
		seen.WriteByte('\n')
		env, err := uplink.DecodeEnvelope(m.Payload, 0)
		if err != nil {
			continue // not an envelope (a reported status): grepped raw above
		}
		for _, r := range env.Records {
			kinds[r.Kind+"/"+r.Pipeline]++
			if r.Pipeline == "vault" {
				t.Errorf("a record of the local pipeline left the device: %s", r.Data)
			}
			seen.Write(r.Data)
			seen.WriteByte('\n')
			// Bytes hidden in base64 are bytes that left all the same.
			var hidden struct {
				B64 []byte `json:"payload_base64"`
			}
			if json.Unmarshal(r.Data, &hidden) == nil {
				seen.Write(hidden.B64)
			}
		}
	}
	all := seen.String()
	for _, v := range append(planted, vault...) {
		if strings.Contains(all, v) {
			i := strings.Index(all, v)
			t.Errorf("%q left the device: …%s…", v, all[max(0, i-120):min(len(all), i+len(v)+40)])
		}
	}
	t.Logf("upstream: %v", kinds)
	for _, k := range []string{"result/readings", "deadletter/strict", "deadletter/texts"} {
		if kinds[k] == 0 {
			t.Errorf("no %s record went upstream: the test did not exercise that path", k)
		}
	}
}
