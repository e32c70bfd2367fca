package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon"
	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/jobs"
	"github.com/ember-edge/ember/daemon/mqtt"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
)

// This file holds what the MQTT ingest benchmarks share: an in-process
// ember without inference, a load generator of many QoS 1 publishers,
// and a proxy that times an MQTT client's acknowledgements.

// ingestPipeline is a plant's alarm pipeline: JSON with fields, a
// request id for deduplication, a prompt template. Its backlog bound is
// lifted so that a benchmark's jobs are never refused.
const ingestPipeline = `pipelines:
  - name: alarms
    match: plant/+/+/alarm
    decode: json
    id: id
    fields: {id: id, machine: machine, code: code, text: text, value: value}
    prompt: "Alarm {{.code}} on {{.machine}}: {{.text}} (value {{.value}})"
    max_tokens: 64
    backlog: {max: 1000000000}
`

// ember is emberd's ingest path in this process, built as daemon.Run
// builds it (store, job manager, ingester, embedded broker or external
// client) but without the engine and the job dispatcher: jobs are
// committed and acknowledged, and then stay queued. That measures durable
// ingest alone, with no inference competing for the cores, and needs no
// configuration trick (a model that is not loaded would still have its
// jobs started and retried, two more commits each).
type ember struct {
	cfg    *config.Config
	st     *store.Store
	intake *jobs.Intake
	broker *mqtt.Broker
	client *mqtt.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// startEmber runs ember with the given mqtt: section on a store in dir.
func startEmber(b *testing.B, dir, mqttYAML string) *ember {
	b.Helper()
	daemon.TuneGC() // as emberd runs
	doc := "device_id: bench\nstate_dir: state\ngrpc: {socket: ember.sock}\n" +
		"store: {max_records: 100000000, max_bytes: 64GiB}\n" + mqttYAML + ingestPipeline
	cfg, err := config.Parse([]byte(doc), dir)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(cfg.DBPath(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	e := &ember{cfg: cfg, st: st, done: make(chan struct{})}
	log := slog.New(slog.DiscardHandler)
	pipes := pipeline.NewSet(cfg.DeviceID)
	if _, err := pipes.SetLocal(cfg.Pipelines); err != nil {
		b.Fatal(err)
	}
	pub := &mqtt.Publisher{}
	q := jobs.New(jobs.Deps{Store: st, Pipelines: pipes, Publisher: pub}, jobs.Options{
		DeviceID: cfg.DeviceID,
		Limits: store.Limits{MaxRecords: uint64(cfg.Store.MaxRecords), MaxBytes: uint64(cfg.Store.MaxBytes),
			MaxAge: cfg.Store.MaxAge.D()},
		DedupWindow: cfg.Store.DedupWindow.D(),
		MaxPayload:  int(cfg.MQTT.Embedded.MaxPayload),
		Logger:      log,
	})
	e.intake = q.Intake
	in, err := mqtt.NewIngester(q.Intake, pipes, log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	var run func(context.Context) error
	switch {
	case cfg.MQTT.Embedded.Listen != "":
		if e.broker, err = mqtt.NewBroker(cfg.MQTT.Embedded, in, cfg.DeviceID, log); err != nil {
			b.Fatal(err)
		}
		pub.Broker, run = e.broker, e.broker.Run
	case cfg.MQTT.External.URL != "":
		if e.client, err = mqtt.NewClient(cfg.MQTT.External, in, cfg.DeviceID, log); err != nil {
			b.Fatal(err)
		}
		pub.Client, run = e.client, e.client.Run
	}
	go func() {
		defer close(e.done)
		if err := run(ctx); err != nil {
			panic(err)
		}
	}()
	b.Cleanup(e.close)
	return e
}

func (e *ember) close() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	e.st.Close()
	e.cancel = nil
}

// queued is the number of jobs committed and waiting.
func (e *ember) queued(b *testing.B) int {
	n, err := e.st.Backlog()
	if err != nil {
		b.Fatal(err)
	}
	return n["alarms"]
}

// waitOnline waits for the retained status ember publishes once it
// serves (embedded) or has subscribed (external) on the broker at addr.
func waitOnline(b *testing.B, addr string) {
	b.Helper()
	online := make(chan struct{}, 1)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("bench-probe").SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond))
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		b.Fatalf("connect to %s: %v", addr, tok.Error())
	}
	defer c.Disconnect(0)
	c.Subscribe(mqtt.StatusTopic("bench"), 1, func(_ paho.Client, m paho.Message) {
		if string(m.Payload()) == "online" {
			select {
			case online <- struct{}{}:
			default:
			}
		}
	})
	select {
	case <-online:
	case <-time.After(20 * time.Second):
		b.Fatalf("ember never said online on %s", addr)
	}
}

// load is one run of many publishers, each on its own connection,
// publishing its share of n messages at QoS 1 with at most window
// unacknowledged at a time.
type load struct {
	n       int
	sent    []atomic.Int64 // ns since start, per message
	acked   []atomic.Int64 // when the publisher got its PUBACK
	durable []atomic.Int64 // when ember acknowledged it (external path)
	handed  []atomic.Int64 // when the broker delivered it to ember (external path)
	start   time.Time
	errs    atomic.Int64
	nDur    atomic.Int64
}

// newLoad prepares a run of n messages; times are taken from now.
func newLoad(n int) *load {
	return &load{n: n, start: time.Now(), sent: make([]atomic.Int64, n), acked: make([]atomic.Int64, n),
		durable: make([]atomic.Int64, n), handed: make([]atomic.Int64, n)}
}

// payloadSize is what a PLC alarm in JSON typically weighs.
const payloadSize = 200

// payload is a 200-byte JSON alarm whose id is the message's index, at a
// fixed offset so the proxy can read it cheaply.
func payload(i int) []byte {
	p := fmt.Appendf(nil, `{"id":"m-%09d","machine":"press-%02d","code":"E-217","text":"hydraulic pressure low on cylinder 2","value":81.5,"unit":"bar","ts":"2026-03-02T07:14:00.000Z","pad":"`, i, i%32)
	for len(p) < payloadSize-2 {
		p = append(p, 'x')
	}
	return append(p, `"}`...)
}

// payloadIndex reads the index back: the digits after {"id":"m-.
func payloadIndex(p []byte) (int, bool) {
	if len(p) < 18 {
		return 0, false
	}
	i, err := strconv.Atoi(string(p[9:18]))
	return i, err == nil
}

// run publishes l.n messages through addr from publishers connections,
// on topics under prefix. Message indexes start at base, so that every
// run's ids are new (the pipeline deduplicates by id).
func (l *load) run(b *testing.B, addr, prefix string, publishers, window, base int) {
	b.Helper()
	clients := make([]paho.Client, publishers)
	for k := range clients {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("plc-%s-%d", prefix, k)).
			SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(false).SetWriteTimeout(10 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect publisher %d to %s: %v", k, addr, tok.Error())
		}
		clients[k] = c
	}
	defer func() {
		for _, c := range clients {
			c.Disconnect(0)
		}
	}()
	type inflight struct {
		i   int
		tok paho.Token
	}
	var wg sync.WaitGroup
	for k, c := range clients {
		wg.Go(func() {
			pending := make(chan inflight, window-1)
			var acks sync.WaitGroup
			acks.Go(func() {
				// PUBACKs on one connection come in order.
				for p := range pending {
					<-p.tok.Done()
					l.acked[p.i].Store(int64(time.Since(l.start)))
					if p.tok.Error() != nil {
						l.errs.Add(1)
					}
				}
			})
			// Each publisher is a gateway for topicsPerPublisher machines.
			topics := make([]string, topicsPerPublisher)
			for m := range topics {
				topics[m] = fmt.Sprintf("%s/line%d/press-%03d/alarm", prefix, k%4, k*topicsPerPublisher+m)
			}
			for j, i := 0, k; i < l.n; j, i = j+1, i+publishers {
				body := payload(base + i)
				l.sent[i].Store(int64(time.Since(l.start)))
				pending <- inflight{i, c.Publish(topics[j%len(topics)], 1, false, body)}
			}
			close(pending)
			acks.Wait()
		})
	}
	wg.Wait()
	if n := l.errs.Load(); n > 0 {
		b.Fatalf("%d publishes failed", n)
	}
}

// stats are a run's throughput and latencies.
type stats struct {
	rate     float64 // messages per second
	p50, p99 time.Duration
	// cores is the CPU used meanwhile (this process and mosquitto) per
	// second of wall time.
	cores float64
	// ackP50 and ackP99 are ember's own latency on the external path:
	// from the broker's delivery to ember's PUBACK.
	ackP50, ackP99 time.Duration
}

// summarize measures each message from sent to done (the
// acknowledgement that counts), and the rate from the first message sent
// to the last one done, or to until when that is later.
func (l *load) summarize(done []atomic.Int64, until time.Duration) stats {
	lat := make([]time.Duration, l.n)
	first, last := int64(l.sent[0].Load()), int64(until)
	for i := range l.n {
		s, d := l.sent[i].Load(), done[i].Load()
		first, last = min(first, s), max(last, d)
		lat[i] = time.Duration(d - s)
	}
	slices.Sort(lat)
	return stats{rate: float64(l.n) / time.Duration(last-first).Seconds(), p50: lat[l.n/2], p99: lat[l.n*99/100]}
}

// emberSide adds the external path's delivery-to-PUBACK latencies.
func (l *load) emberSide(s stats) stats {
	lat := make([]time.Duration, l.n)
	for i := range l.n {
		lat[i] = time.Duration(l.durable[i].Load() - l.handed[i].Load())
	}
	slices.Sort(lat)
	s.ackP50, s.ackP99 = lat[l.n/2], lat[l.n*99/100]
	return s
}

// ackProxy sits between an MQTT 3.1.1 client (emberd's external client)
// and its broker, forwards every byte unchanged, and notes when the
// client acknowledges each QoS 1 message the broker delivers: for the
// external path, that PUBACK, sent after the commit, is the durable one;
// the publisher's PUBACK comes from the broker before ember has the
// message at all.
type ackProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	load     *load
	base     int
	pending  map[uint16]int // packet id → message index, in flight to the client
	// maxPending is the most messages seen in flight to the client.
	maxPending int
}

func startAckProxy(b *testing.B, upstream string) *ackProxy {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p := &ackProxy{ln: ln, upstream: upstream, pending: map[uint16]int{}}
	go p.serve()
	b.Cleanup(func() { ln.Close() })
	return p
}

func (p *ackProxy) addr() string { return p.ln.Addr().String() }

// inFlight returns the most messages seen in flight to the client.
func (p *ackProxy) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxPending
}

// track attributes acknowledgements to l, whose indexes start at base.
func (p *ackProxy) track(l *load, base int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.load, p.base = l, base
}

func (p *ackProxy) serve() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			down.Close()
			continue
		}
		go p.pipe(up, down, p.fromBroker)
		go p.pipe(down, up, p.fromClient)
	}
}

// pipe copies MQTT packets from src to dst, showing each to inspect.
func (p *ackProxy) pipe(src, dst net.Conn, inspect func(typ byte, body []byte)) {
	defer src.Close()
	defer dst.Close()
	r, w := bufio.NewReaderSize(src, 64<<10), bufio.NewWriterSize(dst, 64<<10)
	var pkt []byte
	for {
		pkt = pkt[:0]
		h, err := r.ReadByte()
		if err != nil {
			return
		}
		pkt = append(pkt, h)
		n, mult := 0, 1
		for {
			c, err := r.ReadByte()
			if err != nil {
				return
			}
			pkt = append(pkt, c)
			n += int(c&127) * mult
			mult *= 128
			if c < 128 {
				break
			}
		}
		head := len(pkt)
		pkt = slices.Grow(pkt, n)[:head+n]
		if _, err := io.ReadFull(r, pkt[head:]); err != nil {
			return
		}
		inspect(h, pkt[head:])
		if _, err := w.Write(pkt); err != nil {
			return
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// fromBroker notes the packet id of each QoS 1 PUBLISH (MQTT 3.1.1: topic,
// packet id, payload).
func (p *ackProxy) fromBroker(h byte, body []byte) {
	if h>>4 != 3 || (h>>1)&3 != 1 || len(body) < 2 {
		return
	}
	tl := int(binary.BigEndian.Uint16(body))
	if len(body) < 4+tl {
		return
	}
	id := binary.BigEndian.Uint16(body[2+tl:])
	i, ok := payloadIndex(body[4+tl:])
	if !ok {
		return
	}
	now := time.Now()
	p.mu.Lock()
	p.pending[id] = i
	p.maxPending = max(p.maxPending, len(p.pending))
	l, base := p.load, p.base
	p.mu.Unlock()
	if l != nil && i >= base && i-base < l.n {
		l.handed[i-base].Store(int64(now.Sub(l.start)))
	}
}

// fromClient times each PUBACK.
func (p *ackProxy) fromClient(h byte, body []byte) {
	if h>>4 != 4 || len(body) < 2 {
		return
	}
	now := time.Now()
	id := binary.BigEndian.Uint16(body)
	p.mu.Lock()
	i, ok := p.pending[id]
	delete(p.pending, id)
	l, base := p.load, p.base
	p.mu.Unlock()
	if !ok || l == nil || i < base || i-base >= l.n {
		return
	}
	l.durable[i-base].Store(int64(now.Sub(l.start)))
	l.nDur.Add(1)
}

// subscriber counts what a plain QoS 1 subscriber on the broker gets.
type subscriber struct {
	c paho.Client
	n atomic.Int64
	// last is when the latest message arrived (Unix ns).
	last atomic.Int64
}

func startSubscriber(b *testing.B, addr, filter string) *subscriber {
	b.Helper()
	s := &subscriber{}
	s.c = paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("bench-subscriber").
		SetCleanSession(true).SetOrderMatters(false))
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	tok := s.c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		s.last.Store(time.Now().UnixNano())
		s.n.Add(1)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	b.Cleanup(func() { s.c.Disconnect(0) })
	return s
}

// waitFor polls cond until it holds, failing after timeout.
func waitFor(b *testing.B, timeout time.Duration, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(b *testing.B) string {
	port, err := testkit.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// cpuClock reads the CPU time used so far by this process and by the
// processes pids (mosquitto).
func cpuClock(pids ...int) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces): state is
		// field 3, utime 14 and stime 15, in clock ticks of 1/100 s.
		f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			total += time.Duration(ut+st) * 10 * time.Millisecond
		}
	}
	return total
}
