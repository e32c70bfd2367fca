package e2e_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
)

// The burst: more QoS 1 messages than the pipeline's backlog holds, all
// at once, as a gateway that reconnects after an outage sends them: the
// issue's 2,000 messages against the default backlog of 1,000.
const (
	burstMessages = 2000
	burstBacklog  = 1000
	// The rate is measured over results burstFrom to burstTo (the first
	// ones include the model's warm-up), all within the backlog, so both
	// brokers have as much work queued while it is measured.
	burstFrom, burstTo = 50, 550
)

var burstPipeline = fmt.Sprintf(`pipelines:
  - name: burst
    match: plant/burst/+/reading
    prompt: "Reading {{.n}}"
    max_tokens: 1
    backlog: {max: %d}
`, burstBacklog)

// TestBurstKeepsResultsFlowing sends a burst through the embedded broker
// and, queued for emberd's persistent session while it is stopped,
// through a real mosquitto it is a client of. Results must flow as fast
// as a client of mosquitto as through the embedded broker (a result
// publish must not wait for the inbound messages ahead of its PUBACK),
// and nothing may be lost: through the embedded broker, what the backlog
// cannot take is refused (a dead letter); through mosquitto it is held
// unacknowledged in the broker's session and processed, in order, once
// the backlog has room.
func TestBurstKeepsResultsFlowing(t *testing.T) {
	embedded := burstRun(t, "embedded")
	external := burstRun(t, "mosquitto")
	t.Logf("job results per second during the burst: embedded broker %.1f, client of mosquitto %.1f", embedded, external)
	if external < 0.8*embedded {
		t.Fatalf("as a client of mosquitto results came at %.1f/s, under 80%% of the embedded broker's %.1f/s", external, embedded)
	}
}

// burstRun sends the burst via "embedded" or "mosquitto", checks that
// nothing was lost, and returns the results per second it measured.
func burstRun(t *testing.T, via string) (rate float64) {
	t.Run(via, func(t *testing.T) {
		c := daemonConfig{Extra: burstPipeline}
		addr := ""
		var mq *testkit.Mosquitto
		if via == "mosquitto" {
			mq = testkit.StartMosquitto(t)
			c.MQTT = fmt.Sprintf("mqtt:\n  embedded: {listen: \"\"}\n  external: {url: %q, client_id: emberd-burst, backoff: {min: 100ms, max: 1s}}\n", mq.URL())
			addr = mq.Addr
		}
		d := newEmberd(t, c)
		if addr == "" {
			addr = d.MQTTAddr
		}
		watcher := mqttClient(t, addr, "watcher")
		waitOnline(t, subscribe(t, watcher, "ember/v1/+/status"))
		results := countArrivals(t, watcher, "ember/v1/"+deviceID+"/result/burst")
		gateway := mqttClient(t, addr, "gateway-9")
		if mq != nil {
			// emberd's session subscribed; stopped, mosquitto queues the
			// burst for it, and delivers it all at once when it is back.
			d.stop()
			sendBurst(t, gateway)
			d.start()
		} else {
			sendBurst(t, gateway)
		}
		var stalled bool
		rate, stalled = results.rate(burstFrom, burstTo, 30*time.Second)
		if stalled {
			t.Errorf("results stalled: %.2f/s", rate)
			return
		}
		d.waitIdle(90 * time.Second)
		d.stop()
		checkBurstOutcome(t, d, via == "mosquitto")
	})
	return rate
}

// sendBurst publishes the burst without waiting for each PUBACK, then
// waits for them all.
func sendBurst(t *testing.T, c paho.Client) {
	t.Helper()
	toks := make([]paho.Token, burstMessages)
	for i := range burstMessages {
		toks[i] = c.Publish("plant/burst/gw9/reading", 1, false, fmt.Sprintf(`{"n":%d}`, i))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			t.Fatalf("message %d: no PUBACK (%v)", i, tok.Error())
		}
	}
}

// checkBurstOutcome reads the stopped daemon's database: every message
// became exactly one finished job or, where refusing is allowed, one dead
// letter; jobs are in publish order.
func checkBurstOutcome(t *testing.T, d *emberd, holdAll bool) {
	t.Helper()
	seen := make([]int, burstMessages)
	jobs := allJobs(t, d.dbPath())
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].ID < jobs[j].ID })
	var order []int
	for _, j := range jobs {
		if j.State != store.JobDone {
			t.Errorf("job %d is %s, want done", j.ID, j.State)
		}
		var req struct{ Input struct{ N int } }
		if err := json.Unmarshal(j.Request, &req); err != nil {
			t.Fatalf("job %d: %v", j.ID, err)
		}
		seen[req.Input.N]++
		order = append(order, req.Input.N)
	}
	deadLetters := 0
	for _, r := range allRecords(t, d.dbPath()) {
		if r.Kind != store.KindDeadLetter {
			continue
		}
		// A refused JSON message is kept as JSON, under input.
		var dl struct {
			Reason string
			Input  struct{ N *int }
		}
		if err := json.Unmarshal(r.Data, &dl); err != nil || dl.Input.N == nil {
			t.Fatalf("dead letter %d: %s: %v", r.Seq, r.Data, err)
		}
		in := struct{ N int }{*dl.Input.N}
		seen[in.N]++
		deadLetters++
		if holdAll && deadLetters == 1 {
			t.Errorf("message %d refused (%s); held messages must wait for room, not be refused", in.N, dl.Reason)
		}
	}
	for n, k := range seen {
		if k != 1 {
			t.Errorf("message %d became %d jobs and dead letters, want 1", n, k)
		}
	}
	if !slices.IsSorted(order) {
		t.Errorf("jobs are not in publish order: %v", order)
	}
	t.Logf("%d messages: %d jobs, %d dead letters", burstMessages, len(jobs), deadLetters)
}

// arrivals records when messages arrive on a topic.
type arrivals struct {
	mu    sync.Mutex
	times []time.Time
}

func countArrivals(t *testing.T, c paho.Client, topic string) *arrivals {
	t.Helper()
	a := &arrivals{}
	tok := c.Subscribe(topic, 1, func(paho.Client, paho.Message) {
		a.mu.Lock()
		a.times = append(a.times, time.Now())
		a.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
	return a
}

// rate waits for arrival to and returns the arrivals per second from
// arrival from to arrival to. After timeout it returns the rate so far,
// which is what a stall measures, and stalled.
func (a *arrivals) rate(from, to int, timeout time.Duration) (rate float64, stalled bool) {
	start := time.Now()
	for {
		a.mu.Lock()
		n := len(a.times)
		var first, last time.Time
		if n > from {
			first = a.times[from]
		}
		if n > to {
			last = a.times[to]
		}
		a.mu.Unlock()
		if !last.IsZero() {
			return float64(to-from) / last.Sub(first).Seconds(), false
		}
		if time.Since(start) > timeout {
			if first.IsZero() {
				return float64(n) / time.Since(start).Seconds(), true
			}
			return float64(n-from) / time.Since(first).Seconds(), true
		}
		time.Sleep(20 * time.Millisecond)
	}
}
