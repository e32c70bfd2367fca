package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// orderPipelines take every message on one topic twice: "log" makes a
// job per message; "latest" coalesces them for an hour, so its one job
// must end up holding the newest message.
const orderPipelines = `pipelines:
  - name: log
    match: plant/order/+/reading
    prompt: "Reading {{.n}}"
    max_tokens: 1
  - name: latest
    match: plant/order/+/reading
    prompt: "Latest reading {{.n}}"
    max_tokens: 1
    coalesce: {key: "{{level 2}}", window: 1h}
`

// TestPipelinedMessagesKeepTheirOrder publishes many QoS 1 messages on
// one connection without waiting for each PUBACK, as a gateway with a
// send window does, through the embedded broker and through mosquitto.
// emberd commits them many to a transaction, yet in arrival order: one
// job per message with ids in publish order, and the coalesced job holds
// the last message, not whichever committed last.
func TestPipelinedMessagesKeepTheirOrder(t *testing.T) {
	const messages = 400
	for _, via := range []string{"embedded", "mosquitto"} {
		t.Run(via, func(t *testing.T) {
			c := daemonConfig{Extra: orderPipelines}
			addr := ""
			if via == "mosquitto" {
				mq := testkit.StartMosquitto(t)
				c.MQTT = fmt.Sprintf("mqtt:\n  embedded: {listen: \"\"}\n  external: {url: %q, client_id: emberd-order}\n", mq.URL())
				addr = mq.Addr
			}
			d := newEmberd(t, c)
			if addr == "" {
				addr = d.MQTTAddr
			}
			plc := mqttClient(t, addr, "gateway-7")
			waitOnline(t, subscribe(t, mqttClient(t, addr, "watcher"), "ember/v1/+/status"))
			toks := make([]paho.Token, messages)
			for i := range messages {
				toks[i] = plc.Publish("plant/order/gw7/reading", 1, false, fmt.Sprintf(`{"n":%d}`, i))
			}
			for i, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					t.Fatalf("message %d: no PUBACK (%v)", i, tok.Error())
				}
			}
			// Through mosquitto, the PUBACKs above are mosquitto's: wait for
			// emberd to have taken every message.
			jobsAPI := emberv1.NewJobServiceClient(d.grpc())
			deadline := time.Now().Add(30 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := jobsAPI.List(ctx, &emberv1.ListJobsRequest{Pipeline: "log", Limit: 2 * messages})
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				if len(resp.Jobs) >= messages {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d messages became jobs within 30s", len(resp.Jobs), messages)
				}
				time.Sleep(50 * time.Millisecond)
			}
			d.stop()

			st, err := store.Open(d.dbPath(), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			jobs, err := st.Jobs(store.JobFilter{Limit: 10 * messages})
			if err != nil {
				t.Fatal(err)
			}
			slices.Reverse(jobs) // oldest first
			var logged []int
			latest := -1
			for _, j := range jobs {
				var req struct{ Input struct{ N int } }
				if err := json.Unmarshal(j.Request, &req); err != nil {
					t.Fatalf("job %d: %v", j.ID, err)
				}
				switch j.Pipeline {
				case "log":
					logged = append(logged, req.Input.N)
				case "latest":
					if latest >= 0 {
						t.Fatalf("a second coalesced job %d", j.ID)
					}
					latest = req.Input.N
				}
			}
			if len(logged) != messages || !slices.IsSorted(logged) {
				t.Fatalf("%d jobs for %d messages, in the order %v", len(logged), messages, logged)
			}
			if latest != messages-1 {
				t.Fatalf("the coalesced job holds message %d, want the last, %d", latest, messages-1)
			}
		})
	}
}
