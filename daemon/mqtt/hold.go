package mqtt

import (
	"context"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon/store"
)

// inbox is one client worker's queue of delivered, unacknowledged
// messages. Putting never blocks: paho calls the message handler on the
// goroutine that also reads the PUBACKs of emberd's own publishes, so a
// handler that waits stalls every result publish behind it. Its length
// is bounded by the broker instead: a QoS 1 message stays in flight until
// it is acknowledged, and the broker sends no more than its in-flight
// window (mosquitto's max_inflight_messages) to one session.
type inbox struct {
	mu   sync.Mutex
	msgs []paho.Message
	more chan struct{} // signalled when msgs becomes non-empty
}

func newInbox() *inbox { return &inbox{more: make(chan struct{}, 1)} }

// put appends m unless the inbox holds max messages and m is QoS 0 (no
// window bounds those, and at most once allows dropping them); it
// reports whether m was kept.
func (b *inbox) put(m paho.Message, max int) bool {
	b.mu.Lock()
	if m.Qos() == 0 && len(b.msgs) >= max {
		b.mu.Unlock()
		return false
	}
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	select {
	case b.more <- struct{}{}:
	default:
	}
	return true
}

// next returns the oldest message, waiting for one; false when ctx ends.
func (b *inbox) next(ctx context.Context) (paho.Message, bool) {
	for {
		b.mu.Lock()
		if len(b.msgs) > 0 {
			m := b.msgs[0]
			b.msgs[0] = nil
			b.msgs = b.msgs[1:]
			if len(b.msgs) == 0 {
				b.msgs = nil // let the burst's backing array go
			}
			b.mu.Unlock()
			return m, true
		}
		b.mu.Unlock()
		select {
		case <-b.more:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// backlogGate holds QoS 1 and 2 messages that a pipeline's backlog has no
// room for, rather than passing them on to be refused: the broker keeps
// them, and they are taken as jobs start and the backlog drains. It
// counts the messages it let through that are not yet settled, which the
// committed backlog does not show yet, so that a burst queued in one go
// does not overshoot the room it saw.
type backlogGate struct {
	// limits returns the backlog.max of each pipeline that takes messages
	// on a topic and refuses them when its backlog is full.
	limits func(topic string) map[string]int
	// backlog returns the committed number of queued jobs per pipeline.
	backlog func() (map[string]int, error)

	mu sync.Mutex
	// room is each pipeline's room at the last look at the backlog, less
	// what was admitted since; pending is admitted and not yet settled.
	room    map[string]int
	pending map[string]int
	looked  time.Time
}

// gatePoll is how often a held message looks at the backlog again: jobs
// starting free its room, and nothing announces them.
const gatePoll = 10 * time.Millisecond

func newBacklogGate(limits func(string) map[string]int, backlog func() (map[string]int, error)) *backlogGate {
	return &backlogGate{limits: limits, backlog: backlog, room: map[string]int{}, pending: map[string]int{}}
}

// admit reports whether a message on topic has room in the backlog of
// every pipeline that limits it, and if so counts it as pending in each;
// the names returned are for release. An error reading the backlog lets
// the message through: the job manager then decides, as it would
// without the gate.
func (g *backlogGate) admit(topic string) (ok bool, names []string) {
	lim := g.limits(topic)
	if len(lim) == 0 {
		return true, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	stale := time.Since(g.looked) > time.Second
	for name := range lim {
		if r, seen := g.room[name]; !seen || r <= 0 {
			stale = true
		}
	}
	if stale && time.Since(g.looked) >= gatePoll/2 {
		queued, err := g.backlog()
		if err != nil {
			return true, nil
		}
		g.looked = time.Now()
		clear(g.room)
		for name, max := range lim {
			// A pending message already committed is counted twice here,
			// which errs towards holding, briefly: it settles soon.
			g.room[name] = max - queued[name] - g.pending[name]
		}
	}
	for name := range lim {
		if g.room[name] <= 0 {
			return false, nil
		}
	}
	for name := range lim {
		g.room[name]--
		g.pending[name]++
		names = append(names, name)
	}
	return true, names
}

// release settles messages admitted for names.
func (g *backlogGate) release(names []string) {
	if len(names) == 0 {
		return
	}
	g.mu.Lock()
	for _, name := range names {
		if g.pending[name]--; g.pending[name] <= 0 {
			delete(g.pending, name)
		}
	}
	g.mu.Unlock()
}

// wait holds a message on topic until admit lets it through; false when
// ctx ends first.
func (g *backlogGate) wait(ctx context.Context, topic string) (ok bool, names []string) {
	for {
		if ok, names := g.admit(topic); ok {
			return true, names
		}
		select {
		case <-time.After(gatePoll):
		case <-ctx.Done():
			return false, nil
		}
	}
}

// backlogLimits returns, for a topic, the backlog.max of each pipeline
// that takes its messages and refuses them when its backlog is full
// (overflow reject); drop_oldest makes room by itself.
func (c *Client) backlogLimits(topic string) map[string]int {
	var out map[string]int
	for _, p := range c.in.pipes.Snapshot().List() {
		cfg := p.Config()
		if cfg.Backlog.Max <= 0 || cfg.Backlog.Overflow == string(store.OverflowDropOldest) || !p.Matches(topic) {
			continue
		}
		if out == nil {
			out = map[string]int{}
		}
		out[cfg.Name] = cfg.Backlog.Max
	}
	return out
}
