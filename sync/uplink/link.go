package uplink

import (
	"errors"
	"log/slog"
	"slices"
	"sync"

	"github.com/ember-edge/ember/sync/redact"
)

// Link lets other parts of the daemon (the fleet updater) use the
// uplink's MQTT connection. It has the method set of sync/fleet.Link:
// subscriptions are kept across reconnects (and so retained messages
// are delivered again on each), Publish fails fast while the link is
// down, and Notify reports the link going up and down.
type Link struct {
	log *slog.Logger
	// red redacts everything published through the link (the fleet's
	// reported status): the same rules as the records, for every byte
	// that leaves.
	red *redact.Redactor

	mu     sync.Mutex
	c      conn // nil while down
	subs   []subscription
	notify []func(up bool)
}

type subscription struct {
	topic   string
	handler func([]byte)
}

// Subscribe registers handler for topic (an MQTT filter, QoS 1). While
// the link is up it subscribes at once; it subscribes again on every
// reconnect. handler runs on the MQTT client's goroutine and must not
// block. An error says the subscription could not be made now; it is
// still kept and made on the next connection.
func (l *Link) Subscribe(topic string, handler func(payload []byte)) error {
	if topic == "" || handler == nil {
		return errors.New("subscribe: empty topic or nil handler")
	}
	l.mu.Lock()
	l.subs = append(l.subs, subscription{topic, handler})
	c := l.c
	l.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.subscribe(topic, handler)
}

// Publish sends payload, redacted by the uplink's rules, on topic at
// QoS 1 and waits for the broker's PUBACK. It returns ErrOffline at once
// while the link is down.
func (l *Link) Publish(topic string, payload []byte, retain bool) error {
	l.mu.Lock()
	c := l.c
	l.mu.Unlock()
	if c == nil {
		return ErrOffline
	}
	if l.red != nil {
		payload = l.red.Redact(payload)
	}
	return c.publishWait(topic, payload, retain)
}

// Notify registers fn, called with true each time the link comes up
// (after its subscriptions are made again) and with false when it
// drops. When the link is up as fn is registered, fn(true) is called at
// once. fn must not block.
func (l *Link) Notify(fn func(up bool)) {
	l.mu.Lock()
	l.notify = append(l.notify, fn)
	up := l.c != nil
	l.mu.Unlock()
	if up {
		fn(true)
	}
}

// Up reports whether the link is up.
func (l *Link) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c != nil
}

// up makes the subscriptions on c, then reports the link up.
func (l *Link) up(c conn) {
	l.mu.Lock()
	l.c = c
	subs := slices.Clone(l.subs)
	fns := slices.Clone(l.notify)
	l.mu.Unlock()
	for _, s := range subs {
		if err := c.subscribe(s.topic, s.handler); err != nil {
			l.log.Warn("uplink: subscription not made; it is made again on the next connection", "topic", s.topic, "err", err)
		}
	}
	for _, fn := range fns {
		fn(true)
	}
}

// down reports the link down, once.
func (l *Link) down() {
	l.mu.Lock()
	was := l.c != nil
	l.c = nil
	fns := slices.Clone(l.notify)
	l.mu.Unlock()
	if was {
		for _, fn := range fns {
			fn(false)
		}
	}
}
