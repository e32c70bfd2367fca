package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// conn is one connection to the broker. The session publishes batches
// through it asynchronously, in order, and hears of each PUBACK (or its
// failure) on acks; the Link publishes and subscribes through it
// synchronously.
type conn interface {
	// publish queues a QoS 1 publish of a batch; its outcome arrives on
	// acks with id. It never blocks: the window bounds what is queued.
	publish(topic string, payload []byte, id uint64)
	acks() <-chan ack
	// lost is closed when the connection ends; err then says why.
	lost() <-chan struct{}
	err() error
	// subscribe subscribes at QoS 1 and waits for the SUBACK.
	subscribe(topic string, handler func([]byte)) error
	// publishWait publishes at QoS 1 and waits for the PUBACK.
	publishWait(topic string, payload []byte, retain bool) error
	close()
}

// ack is the outcome of one batch's publish.
type ack struct {
	id  uint64
	err error
}

// dialFunc opens a connection; window bounds the batches in flight.
type dialFunc func(ctx context.Context, window int) (conn, error)

// pahoDialer connects with paho: a fresh client per connection, clean
// session, no automatic reconnection (the uplink's own loop decides when
// to dial), so that on a lost connection every pending publish fails at
// once and the session resends from its durable cursor.
type pahoDialer struct {
	url, clientID, username, password string
	tls                               *tls.Config
	keepAlive, connectTimeout         time.Duration
	opTimeout                         time.Duration
}

func (d *pahoDialer) dial(ctx context.Context, window int) (conn, error) {
	c := &pahoConn{
		out: make(chan pubReq, window+1), ackc: make(chan ack, window+1),
		lostc: make(chan struct{}), stop: make(chan struct{}), opTimeout: d.opTimeout,
	}
	opts := paho.NewClientOptions().
		AddBroker(d.url).
		SetClientID(d.clientID).
		SetUsername(d.username).
		SetPassword(d.password).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(d.keepAlive).
		SetPingTimeout(min(d.keepAlive, 10*time.Second)).
		SetConnectTimeout(d.connectTimeout).
		SetWriteTimeout(d.opTimeout).
		SetMaxResumePubInFlight(window).
		SetDialer(&net.Dialer{Timeout: d.connectTimeout, KeepAlive: 30 * time.Second}).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.setLost(err) })
	if d.tls != nil {
		opts.SetTLSConfig(d.tls)
	}
	c.cli = paho.NewClient(opts)
	tok := c.cli.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		go func() { // let paho finish, then drop whatever it made
			<-tok.Done()
			c.cli.Disconnect(0)
		}()
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	go c.send()
	return c, nil
}

type pubReq struct {
	topic   string
	payload []byte
	id      uint64
}

type pahoConn struct {
	cli       paho.Client
	out       chan pubReq
	ackc      chan ack
	opTimeout time.Duration

	lostOnce sync.Once
	lostc    chan struct{}
	mu       sync.Mutex
	lostErr  error
	stop     chan struct{}
	stopOnce sync.Once
}

// send hands batches to paho one at a time, in order (paho writes them
// in the order Publish is called), and waits for each PUBACK in a
// goroutine of its own, so PUBACKs are reported in whatever order they
// come.
func (c *pahoConn) send() {
	for {
		select {
		case <-c.stop:
			return
		case p := <-c.out:
			tok := c.cli.Publish(p.topic, 1, false, p.payload)
			go func() {
				<-tok.Done()
				c.ackc <- ack{id: p.id, err: tok.Error()} // buffered for the whole window
			}()
		}
	}
}

func (c *pahoConn) publish(topic string, payload []byte, id uint64) {
	c.out <- pubReq{topic, payload, id}
}

func (c *pahoConn) acks() <-chan ack      { return c.ackc }
func (c *pahoConn) lost() <-chan struct{} { return c.lostc }

func (c *pahoConn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lostErr
}

func (c *pahoConn) setLost(err error) {
	c.lostOnce.Do(func() {
		if err == nil {
			err = errors.New("connection closed")
		}
		c.mu.Lock()
		c.lostErr = err
		c.mu.Unlock()
		close(c.lostc)
	})
}

func (c *pahoConn) subscribe(topic string, handler func([]byte)) error {
	tok := c.cli.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { handler(m.Payload()) })
	return c.wait(tok, "subscribe "+topic)
}

func (c *pahoConn) publishWait(topic string, payload []byte, retain bool) error {
	select {
	case <-c.lostc:
		return ErrOffline
	default:
	}
	return c.wait(c.cli.Publish(topic, 1, retain, payload), "publish "+topic)
}

func (c *pahoConn) wait(tok paho.Token, what string) error {
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	case <-c.lostc:
		return fmt.Errorf("%s: %w", what, ErrOffline)
	case <-time.After(c.opTimeout):
		return fmt.Errorf("%s: no answer from the broker within %v", what, c.opTimeout)
	}
}

func (c *pahoConn) close() {
	c.stopOnce.Do(func() {
		close(c.stop)
		c.cli.Disconnect(0)
		c.setLost(errors.New("closed by the uplink"))
	})
}
