package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// malformedPipelines decode JSON (with fields), text, and JSON through a
// template that reads a field not every message has.
const malformedPipelines = `pipelines:
  - name: json-in
    match: lab/json/+
    decode: json
    fields: {machine: machine, code: alarm.code}
    prompt: "Alarm {{.code}} on {{.machine}}"
    max_tokens: 4
  - name: text-in
    match: lab/text/+
    decode: text
    prompt: "Operator note: {{.text}}"
    max_tokens: 4
  - name: tmpl
    match: lab/tmpl/+
    decode: json
    prompt: "Pump {{.pump.name}} reads {{.reading}}"
    max_tokens: 4
`

// TestMalformedInputBecomesDeadLetters sends what a broken PLC or a
// typo'd gateway rule sends, through the embedded broker, and checks each
// message end to end: it is acknowledged (a dead letter is durable too),
// a dead letter with the reason comes on the pipeline's error topic
// ember/v1/<device>/error/<pipeline> carrying the message's topic and
// payload, the same dead letter is in the outbox, and the pipeline keeps
// going: a good message after it yields a result.
func TestMalformedInputBecomesDeadLetters(t *testing.T) {
	d := newEmberd(t, daemonConfig{Embedded: ", max_payload: 1KiB", Extra: malformedPipelines})
	sub := subscribe(t, mqttClient(t, d.MQTTAddr, "hmi"), "ember/v1/"+deviceID+"/#")
	waitOnline(t, sub)
	plc := mqttClient(t, d.MQTTAddr, "plc")
	outbox := emberv1.NewOutboxServiceClient(d.grpc())

	cases := []struct {
		name     string
		pipeline string
		topic    string
		payload  string
		reason   string // the dead letter's reason contains this
		good     string // a good message for the same pipeline
	}{
		{"invalid JSON", "json-in", "lab/json/c1", `{"machine":"press-4","alarm":{"code":`,
			"payload is not valid JSON", `{"machine":"press-4","alarm":{"code":"E-1"}}`},
		{"trailing data after the JSON", "json-in", "lab/json/c2", `{"machine":"press-4"} {"x":1}`,
			"payload is not valid JSON", `{"machine":"press-4","alarm":{"code":"E-2"}}`},
		{"invalid UTF-8 in JSON", "json-in", "lab/json/c3", "{\"machine\":\"pr\xffess-4\",\"alarm\":{\"code\":\"E-3\"}}",
			"payload is not valid UTF-8", `{"machine":"press-4","alarm":{"code":"E-3"}}`},
		{"missing field", "json-in", "lab/json/c4", `{"machine":"press-4","alarm":{}}`,
			`field "code" (alarm.code)`, `{"machine":"press-4","alarm":{"code":"E-4"}}`},
		{"field of the wrong shape", "json-in", "lab/json/c5", `{"machine":"press-4","alarm":"E-5"}`,
			`field "code" (alarm.code)`, `{"machine":"press-4","alarm":{"code":"E-5"}}`},
		{"invalid UTF-8 in text", "text-in", "lab/text/c6", "temp \xfe\xff high",
			"payload is not valid UTF-8", "temp high"},
		{"NUL in text", "text-in", "lab/text/c7", "pump\x00stopped",
			"payload contains a NUL byte", "pump stopped"},
		{"over max_payload", "text-in", "lab/text/c8", strings.Repeat("vibration high ", 100),
			"over the limit of 1024", "vibration high"},
		{"template reads a missing field", "tmpl", "lab/tmpl/c9", `{"reading":3}`,
			"prompt template failed", `{"pump":{"name":"P-3"},"reading":3}`},
		{"template reads into a number", "tmpl", "lab/tmpl/c10", `{"pump":5,"reading":3}`,
			"prompt template failed", `{"pump":{"name":"P-4"},"reading":4}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			publish(t, plc, tc.topic, []byte(tc.payload))
			errTopic := "ember/v1/" + deviceID + "/error/" + tc.pipeline
			var dl deadLetter
			msg := sub.wait(t, 30*time.Second, "dead letter on "+errTopic, func(m message) bool {
				var got deadLetter
				return m.Topic == errTopic && json.Unmarshal(m.Payload, &got) == nil && got.Topic == tc.topic
			})
			if err := json.Unmarshal(msg.Payload, &dl); err != nil {
				t.Fatal(err)
			}
			if dl.Kind != "deadletter" || dl.Pipeline != tc.pipeline || dl.DeviceID != deviceID || dl.Seq == 0 || dl.JobID != 0 {
				t.Errorf("dead letter header: %s", msg.Payload)
			}
			if !strings.Contains(dl.Reason, tc.reason) {
				t.Errorf("reason %q, want it to say %q (error %q)", dl.Reason, tc.reason, dl.Error)
			}
			// A JSON payload is kept as JSON (where redaction reaches it);
			// any other payload as its size and digest, never its bytes.
			if utf8.ValidString(tc.payload) && json.Valid([]byte(tc.payload)) {
				var want, got any
				json.Unmarshal([]byte(tc.payload), &want)
				if json.Unmarshal(dl.Input, &got) != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("dead letter keeps input %s, want the payload %s", dl.Input, tc.payload)
				}
			} else if sum := sha256.Sum256([]byte(tc.payload)); dl.PayloadSize != len(tc.payload) || dl.PayloadSHA256 != hex.EncodeToString(sum[:]) ||
				dl.Payload != "" || len(dl.PayloadB64) != 0 {
				t.Errorf("dead letter keeps %d bytes %q, payload %q (base64 %q); want only the size and sha256 of %q",
					dl.PayloadSize, dl.PayloadSHA256, dl.Payload, dl.PayloadB64, tc.payload)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			rec, err := outbox.Get(ctx, &emberv1.GetRecordRequest{Seq: dl.Seq})
			if err != nil {
				t.Fatalf("outbox record %d: %v", dl.Seq, err)
			}
			if rec.Kind != "deadletter" || rec.Pipeline != tc.pipeline || rec.DataJson != string(msg.Payload) {
				t.Errorf("outbox record %d is %s/%s:\n%s\nwant the published dead letter\n%s", dl.Seq, rec.Kind, rec.Pipeline, rec.DataJson, msg.Payload)
			}

			// The pipeline keeps going.
			okTopic := tc.topic + "ok"
			publish(t, plc, okTopic, []byte(tc.good))
			resultTopic := "ember/v1/" + deviceID + "/result/" + tc.pipeline
			res := sub.wait(t, 30*time.Second, "result for the good message on "+resultTopic, func(m message) bool {
				var r struct {
					Topic string `json:"topic"`
				}
				return m.Topic == resultTopic && json.Unmarshal(m.Payload, &r) == nil && r.Topic == okTopic
			})
			var r struct {
				JobID  uint64          `json:"job_id"`
				Output json.RawMessage `json:"output"`
			}
			if err := json.Unmarshal(res.Payload, &r); err != nil || r.JobID == 0 || !bytes.HasPrefix(r.Output, []byte(`"`)) {
				t.Errorf("result %s (%v)", res.Payload, err)
			}
		})
	}
}

// deadLetter is a dead-letter message as emberd publishes it.
type deadLetter struct {
	Kind       string `json:"kind"`
	Seq        uint64 `json:"seq"`
	DeviceID   string `json:"device_id"`
	Pipeline   string `json:"pipeline"`
	JobID      uint64 `json:"job_id"`
	Reason     string `json:"reason"`
	Error      string `json:"error"`
	Topic      string `json:"topic"`
	Payload    string `json:"payload"`
	PayloadB64 []byte `json:"payload_base64"`
	// Input is a JSON payload, kept as JSON so redaction reaches it;
	// PayloadSize and PayloadSHA256 stand for any other payload.
	Input         json.RawMessage `json:"input"`
	PayloadSize   int             `json:"payload_size"`
	PayloadSHA256 string          `json:"payload_sha256"`
}
