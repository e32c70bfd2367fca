package e2e_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon/store"
)

// crashSeed fixes the kill schedule and the republishing; set
// EMBER_E2E_SEED to replay another one.
const crashSeed = 20260302

// crashPipeline deduplicates by the id in the payload, so a message
// republished because its PUBACK was lost is not a second job.
const crashPipeline = `pipelines:
  - name: events
    match: plant/crash/+/event
    decode: json
    id: id
    prompt: "Event {{.id}} on {{.machine}}: {{.text}}"
    max_tokens: 4
    params: {temperature: 0}
`

// TestNothingAckedIsLostAcrossSIGKILL publishes QoS 1 messages with
// unique ids to emberd's embedded broker, from several connections, while
// emberd is SIGKILLed at random moments and restarted on the same state
// dir. The publishers, like PLCs with a retry buffer, reconnect and
// republish every message they have not seen acknowledged (and, for a
// fixed subset, ones they have). Once every
// message is acknowledged and every job has ended, the database must be
// sound and hold exactly one result per message: an acknowledged message
// is never lost, a republished one never runs twice.
func TestNothingAckedIsLostAcrossSIGKILL(t *testing.T) {
	const (
		messages   = 300
		publishers = 4
		kills      = 8
		// pace spreads each publisher's messages over the kills, so that
		// they land mid-stream: commits, PUBACKs and inference are all in
		// flight.
		pace = 80 * time.Millisecond
	)
	seed := uint64(crashSeed)
	if s := os.Getenv("EMBER_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("EMBER_E2E_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with EMBER_E2E_SEED=%d)", seed, seed)
	killRng := rand.New(rand.NewPCG(seed, 1))

	d := newEmberd(t, daemonConfig{Extra: crashPipeline})
	addr := d.MQTTAddr

	// The killer: SIGKILL at a random moment, restart, again, while the
	// messages are still being published.
	killerDone := make(chan struct{})
	var killLog []string
	var killerFailed atomic.Bool
	go func() {
		defer close(killerDone)
		for i := range kills {
			time.Sleep(time.Duration(100+killRng.IntN(700)) * time.Millisecond)
			d.kill()
			killLog = append(killLog, time.Now().Format("15:04:05.000"))
			if err := d.tryStart(); err != nil {
				t.Errorf("restart %d: %v", i+1, err)
				killerFailed.Store(true)
				return
			}
		}
	}()

	// The publishers: several connections, so that group commits carry
	// several messages when a kill lands.
	pub := &crashPublisher{addr: addr, acked: make([]bool, messages), start: time.Now(), killerDone: killerDone,
		killerFailed: &killerFailed, deadline: time.Now().Add(90 * time.Second)}
	var wg sync.WaitGroup
	errs := make([]error, publishers)
	for k := range publishers {
		rng := rand.New(rand.NewPCG(seed, uint64(10+k)))
		wg.Go(func() { errs[k] = pub.run(k, publishers, pace, rng) })
	}
	wg.Wait()
	<-killerDone
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("all %d messages acknowledged after %v in %d connections; %d acknowledged ones sent again; kills at %v",
		messages, time.Since(pub.start).Round(time.Millisecond), pub.rounds.Load(), pub.echoed.Load(), killLog)

	// The whole echo set once more, on a fresh connection: all duplicates.
	c := mqttClient(t, addr, "plc-crash")
	for i := range messages {
		if echo(i) {
			publish(t, c, crashTopic(i), crashPayload(i))
		}
	}
	d.waitIdle(60 * time.Second)
	d.stop()

	results := map[string]int{}
	for _, r := range allRecords(t, d.dbPath()) {
		var data struct {
			RequestID string `json:"request_id"`
			Reason    string `json:"reason"`
		}
		if err := json.Unmarshal(r.Data, &data); err != nil {
			t.Fatalf("record %d: %v", r.Seq, err)
		}
		switch r.Kind {
		case store.KindResult:
			results[data.RequestID]++
		case store.KindDeadLetter:
			t.Errorf("record %d is a dead letter (%s): %s", r.Seq, data.Reason, r.Data)
		}
	}
	jobs := map[string]int{}
	for _, j := range allJobs(t, d.dbPath()) {
		req := decodeJobRequest(t, j)
		jobs[req.RequestID]++
		if j.State != store.JobDone {
			t.Errorf("job %d (%s) is %s: %s", j.ID, req.RequestID, j.State, j.Error)
		}
	}
	for i := range messages {
		id := fmt.Sprintf("m-%04d", i)
		if results[id] != 1 || jobs[id] != 1 {
			t.Errorf("message %s (acknowledged; echo set %v): %d results, %d jobs; want 1 and 1", id, echo(i), results[id], jobs[id])
		}
		delete(results, id)
		delete(jobs, id)
	}
	if len(results) > 0 || len(jobs) > 0 {
		t.Errorf("results %v and jobs %v for ids never sent", results, jobs)
	}
}

func crashPayload(i int) []byte {
	return fmt.Appendf(nil, `{"id":"m-%04d","machine":"press-%d","text":"cycle %d done"}`, i, i%8, i)
}

func crashTopic(i int) string { return fmt.Sprintf("plant/crash/press-%d/event", i%8) }

// echo says which messages are sent again once acknowledged, to check
// that they deduplicate; the others never are, so that a resend cannot
// hide the loss of one.
func echo(i int) bool { return i%5 == 0 }

// crashPublisher is a PLC with a retry buffer: it reconnects whenever
// the connection drops and resends every message not yet acknowledged.
type crashPublisher struct {
	addr       string
	start      time.Time
	deadline   time.Time
	killerDone <-chan struct{}
	// killerFailed is set when emberd could not be restarted.
	killerFailed *atomic.Bool

	mu     sync.Mutex
	acked  []bool
	rounds atomic.Int64
	echoed atomic.Int64
}

// run publishes messages k, k+n, k+2n, … on its own connection, one
// every n*pace from the start, until all of them are acknowledged and
// the killer is done.
func (p *crashPublisher) run(k, n int, pace time.Duration, rng *rand.Rand) error {
	var mine []int
	for i := k; i < len(p.acked); i += n {
		mine = append(mine, i)
	}
	next := 0 // mine[:next] have been published at least once
	for {
		p.mu.Lock()
		var pending []int
		unacked := len(mine) - next
		for _, i := range mine[:next] {
			if !p.acked[i] {
				pending = append(pending, i)
				unacked++
			} else if echo(i) && rng.IntN(4) == 0 {
				pending = append(pending, i)
				p.echoed.Add(1)
			}
		}
		p.mu.Unlock()
		select {
		case <-p.killerDone:
			if unacked == 0 {
				return nil
			}
		default:
		}
		if p.killerFailed.Load() {
			return fmt.Errorf("publisher %d: emberd could not be restarted", k)
		}
		if time.Now().After(p.deadline) {
			return fmt.Errorf("publisher %d: %d messages still unacknowledged after 90s", k, unacked)
		}
		if next == len(mine) {
			time.Sleep(100 * time.Millisecond) // only resending now: no hurry
		}
		p.rounds.Add(1)
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + p.addr).SetClientID(fmt.Sprintf("plc-crash-%d", k)).
			SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(time.Second).SetWriteTimeout(time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(2*time.Second) || tok.Error() != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		type sent struct {
			i   int
			tok paho.Token
		}
		var toks []sent
		for _, i := range pending {
			toks = append(toks, sent{i, c.Publish(crashTopic(i), 1, false, crashPayload(i))})
		}
		// New messages, paced, while the connection lasts.
		for next < len(mine) && c.IsConnectionOpen() {
			if due := p.start.Add(time.Duration(next) * pace); time.Until(due) > 0 {
				time.Sleep(time.Until(due))
			}
			i := mine[next]
			toks = append(toks, sent{i, c.Publish(crashTopic(i), 1, false, crashPayload(i))})
			next++
		}
		for _, s := range toks {
			// Only a PUBACK completes a QoS 1 token without error.
			if s.tok.WaitTimeout(10*time.Second) && s.tok.Error() == nil {
				p.mu.Lock()
				p.acked[s.i] = true
				p.mu.Unlock()
			}
		}
		c.Disconnect(0)
	}
}
