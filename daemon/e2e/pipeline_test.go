package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon/jsonschema"
	"github.com/ember-edge/ember/internal/testkit"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// alarmSchema is the JSON Schema of the alarm pipeline's output. The
// config carries it as is (JSON is YAML); the test validates with it.
const alarmSchema = `{"type": "object",
  "properties": {
    "severity": {"enum": ["low", "medium", "high", "critical"]},
    "action": {"type": "string", "maxLength": 40},
    "shutdown": {"type": "boolean"}},
  "required": ["severity", "action", "shutdown"]}`

// alarmPipeline is a pipeline a plant would write for PLC alarms: JSON
// in, a schema-constrained JSON decision out. max_tokens is what the
// schema's longest document needs, so generation always completes.
func alarmPipeline(t *testing.T) string {
	t.Helper()
	s, err := jsonschema.Compile([]byte(alarmSchema))
	if err != nil {
		t.Fatal(err)
	}
	var flat bytes.Buffer
	if err := json.Compact(&flat, []byte(alarmSchema)); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`pipelines:
  - name: alarms
    match: plant/line3/+/alarm
    decode: json
    system: You triage alarms from a hydraulic press line. Answer with JSON only.
    prompt: "Alarm {{.code}} on {{.machine}}: {{.text}} (value {{.value}})."
    max_tokens: %d
    params: {seed: 7}
    output:
      format: json
      schema: %s
`, s.MaxBytes()+1, flat.String())
}

// alarm is what a PLC on press 4 publishes.
const alarm = `{"machine":"press-4","code":"E-217","text":"hydraulic pressure low","value":81.5,"ts":"2026-03-02T07:14:00Z"}`

// TestPLCAlarmBecomesSchemaValidJSONResult sends a PLC's alarm to emberd
// over MQTT at QoS 1, through its embedded broker and through a real
// mosquitto it is a client of, and checks the result a subscriber gets:
// a JSON message carrying the job, pipeline, device, model, sequence
// number, the input, and an output that validates against the
// pipeline's schema; and that it is the outbox record of that job.
func TestPLCAlarmBecomesSchemaValidJSONResult(t *testing.T) {
	schema, err := jsonschema.Compile([]byte(alarmSchema))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("embedded", func(t *testing.T) {
		d := newEmberd(t, daemonConfig{Extra: alarmPipeline(t)})
		sub := subscribe(t, mqttClient(t, d.MQTTAddr, "hmi"), "ember/v1/"+deviceID+"/#")
		waitOnline(t, sub)
		checkAlarmResult(t, d, schema, mqttClient(t, d.MQTTAddr, "plc-press-4"), sub)
	})
	t.Run("external", func(t *testing.T) {
		mq := testkit.StartMosquitto(t)
		d := newEmberd(t, daemonConfig{
			MQTT:  fmt.Sprintf("mqtt:\n  embedded: {listen: \"\"}\n  external: {url: %q, backoff: {min: 100ms, max: 1s}}\n", mq.URL()),
			Extra: alarmPipeline(t),
		})
		sub := subscribe(t, mqttClient(t, mq.Addr, "hmi"), "ember/v1/"+deviceID+"/#")
		waitOnline(t, sub)
		checkAlarmResult(t, d, schema, mqttClient(t, mq.Addr, "plc-press-4"), sub)
	})
}

func checkAlarmResult(t *testing.T, d *emberd, schema *jsonschema.Schema, plc paho.Client, sub *inbox) {
	t.Helper()
	const topic = "plant/line3/press-4/alarm"
	publish(t, plc, topic, []byte(alarm))
	resultTopic := "ember/v1/" + deviceID + "/result/alarms"
	msg := sub.wait(t, 60*time.Second, "result on "+resultTopic, onTopic(resultTopic))

	var res struct {
		JobID     uint64          `json:"job_id"`
		Pipeline  string          `json:"pipeline"`
		DeviceID  string          `json:"device_id"`
		Output    json.RawMessage `json:"output"`
		Model     string          `json:"model"`
		CreatedAt time.Time       `json:"created_at"`
		Seq       uint64          `json:"seq"`
		Input     map[string]any  `json:"input"`
		Topic     string          `json:"topic"`
	}
	dec := json.NewDecoder(bytes.NewReader(msg.Payload))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("result is not JSON: %v\n%s", err, msg.Payload)
	}
	var fields map[string]json.RawMessage
	json.Unmarshal(msg.Payload, &fields)
	for _, k := range []string{"job_id", "pipeline", "device_id", "output", "model", "created_at", "seq", "input"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("result lacks %q: %s", k, msg.Payload)
		}
	}
	if res.JobID == 0 || res.Seq == 0 || res.Pipeline != "alarms" || res.DeviceID != deviceID || res.Model != "tiny" || res.Topic != topic {
		t.Errorf("result header: job %d seq %d pipeline %q device %q model %q topic %q",
			res.JobID, res.Seq, res.Pipeline, res.DeviceID, res.Model, res.Topic)
	}
	if res.CreatedAt.IsZero() || time.Since(res.CreatedAt) > 10*time.Minute || time.Until(res.CreatedAt) > time.Minute {
		t.Errorf("created_at %v is not now", res.CreatedAt)
	}
	var obj map[string]any
	if err := json.Unmarshal(res.Output, &obj); err != nil {
		t.Fatalf("output is not a JSON object: %v: %s", err, res.Output)
	}
	if err := schema.Validate(res.Output); err != nil {
		t.Errorf("output does not validate against the pipeline's schema: %v\n%s", err, res.Output)
	}
	want := map[string]any{}
	wdec := json.NewDecoder(bytes.NewReader([]byte(alarm)))
	wdec.UseNumber()
	wdec.Decode(&want)
	if !reflect.DeepEqual(res.Input, want) {
		t.Errorf("input %v, want the alarm %v", res.Input, want)
	}

	// The message is the outbox record of the job's result, word for word.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, err := emberv1.NewOutboxServiceClient(d.grpc()).Get(ctx, &emberv1.GetRecordRequest{Seq: res.Seq})
	if err != nil {
		t.Fatalf("outbox record %d: %v", res.Seq, err)
	}
	if rec.Kind != "result" || rec.JobId != res.JobID || rec.DataJson != string(msg.Payload) {
		t.Errorf("outbox record %d: kind %q job %d\n%s\nwant the published result\n%s", res.Seq, rec.Kind, rec.JobId, rec.DataJson, msg.Payload)
	}
	job, err := emberv1.NewJobServiceClient(d.grpc()).Get(ctx, &emberv1.GetJobRequest{Id: res.JobID})
	if err != nil || job.State != emberv1.JobState_JOB_STATE_DONE || job.ResultSeq != res.Seq {
		t.Errorf("job %d: %v %v", res.JobID, job, err)
	}
	t.Logf("result: %s", res.Output)
}

// TestDirectRequestOverMQTT5RepliesOnResponseTopic sends a request to the
// direct topic ember/v1/<device>/infer/<model> from an MQTT 5 client with
// a Response Topic and Correlation Data, as a request/response caller
// does, and checks that the reply comes on that topic with the same
// correlation data.
func TestDirectRequestOverMQTT5RepliesOnResponseTopic(t *testing.T) {
	d := newEmberd(t, daemonConfig{MQTTMore: "requests: {enabled: true}"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	replies := make(chan *paho5.Publish, 4)
	c := mqtt5Client(t, ctx, d.MQTTAddr, "scada-7", func(p *paho5.Publish) { replies <- p })
	const responseTopic = "scada/7/replies"
	if _, err := c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: responseTopic, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	correlation := []byte("req-4711/\x00binary\xff")
	resp, err := c.Publish(ctx, &paho5.Publish{
		Topic: "ember/v1/" + deviceID + "/infer/tiny", QoS: 1,
		Payload:    []byte(`{"id":"r-4711","prompt":"Summarise: press 4 hydraulic pressure low","params":{"max_tokens":8,"seed":3}}`),
		Properties: &paho5.PublishProperties{ResponseTopic: responseTopic, CorrelationData: correlation},
	})
	if err != nil || resp.ReasonCode != 0 {
		t.Fatalf("publish request: %v (reason %v)", err, resp)
	}
	select {
	case p := <-replies:
		if p.Topic != responseTopic {
			t.Errorf("reply on %q, want %q", p.Topic, responseTopic)
		}
		if p.Properties == nil || !bytes.Equal(p.Properties.CorrelationData, correlation) {
			t.Errorf("reply correlation data %q, want %q", p.Properties.CorrelationData, correlation)
		}
		var res struct {
			JobID     uint64          `json:"job_id"`
			Pipeline  string          `json:"pipeline"`
			RequestID string          `json:"request_id"`
			Model     string          `json:"model"`
			Output    json.RawMessage `json:"output"`
		}
		if err := json.Unmarshal(p.Payload, &res); err != nil {
			t.Fatalf("reply is not JSON: %v: %s", err, p.Payload)
		}
		var text string
		if res.JobID == 0 || res.Pipeline != "infer" || res.RequestID != "r-4711" || res.Model != "tiny" || json.Unmarshal(res.Output, &text) != nil || text == "" {
			t.Errorf("reply %s", p.Payload)
		}
	case <-ctx.Done():
		t.Fatal("no reply on the response topic within 60s")
	}
}

// mqtt5Client connects an MQTT 5 client (paho.golang) that hands every
// message it receives to onMsg.
func mqtt5Client(t *testing.T, ctx context.Context, addr, id string, onMsg func(*paho5.Publish)) *paho5.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := paho5.NewClient(paho5.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){
			func(pr paho5.PublishReceived) (bool, error) {
				if onMsg != nil {
					onMsg(pr.Packet)
				}
				return true, nil
			},
		},
	})
	ca, err := c.Connect(ctx, &paho5.Connect{ClientID: id, KeepAlive: 30, CleanStart: true})
	if err != nil || ca.ReasonCode != 0 {
		t.Fatalf("MQTT 5 connect to %s: %v %v", addr, err, ca)
	}
	t.Cleanup(func() { c.Disconnect(&paho5.Disconnect{}) })
	return c
}
