package testkit

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultProxy is a TCP proxy on loopback in front of one target (a
// broker) that breaks the connections through it the way field links
// break: after a random number of bytes in either direction (so
// mid-packet, mid-batch, mid-acknowledgement) it closes both sides,
// resets them (RST), or stalls and then closes. Faults are bounded in
// time: after FaultFor (or Calm) every connection is carried cleanly,
// so that a simulation through it ends. One proxy serves any number of
// clients; each connection draws its own faults.
type FaultProxy struct {
	ln     net.Listener
	target string
	until  atomic.Int64 // unix nanoseconds after which no fault strikes

	mu       sync.Mutex
	rng      *rand.Rand
	up, down int // mean bytes client→target and target→client before a fault
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup

	accepted, faults atomic.Int64
}

// FaultOptions shape a FaultProxy's faults.
type FaultOptions struct {
	// Seed makes the faults repeatable (for one interleaving).
	Seed uint64
	// Up and Down are the mean bytes client→target and target→client
	// between faults; 0 is no fault that way.
	Up, Down int
	// FaultFor is how long faults strike from the start; 0 is until
	// Calm or the end of the test.
	FaultFor time.Duration
}

// StartFaultProxy listens on a free loopback port, forwards every
// connection to target, and stops when the test ends.
func StartFaultProxy(tb testing.TB, target string, o FaultOptions) *FaultProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &FaultProxy{ln: ln, target: target, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		up: o.Up, down: o.Down, conns: map[net.Conn]struct{}{}}
	until := int64(1<<63 - 1)
	if o.FaultFor > 0 {
		until = time.Now().Add(o.FaultFor).UnixNano()
	}
	p.until.Store(until)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// URL returns the proxy's address as tcp://host:port.
func (p *FaultProxy) URL() string { return "tcp://" + p.ln.Addr().String() }

// Calm stops injecting faults; connections go on cleanly.
func (p *FaultProxy) Calm() { p.until.Store(0) }

// FaultFor makes faults strike from now for d (again).
func (p *FaultProxy) FaultFor(d time.Duration) { p.until.Store(time.Now().Add(d).UnixNano()) }

// Accepted counts the connections accepted; Faults the faults injected.
func (p *FaultProxy) Accepted() int64 { return p.accepted.Load() }

// Faults counts the faults injected so far.
func (p *FaultProxy) Faults() int64 { return p.faults.Load() }

// Close stops listening and cuts every connection.
func (p *FaultProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *FaultProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *FaultProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *FaultProxy) intN(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.IntN(n)
}

// budget draws the bytes a direction carries before its fault; -1 is
// no fault.
func (p *FaultProxy) budget(mean int) int {
	if mean <= 0 || time.Now().UnixNano() >= p.until.Load() {
		return -1
	}
	return p.intN(2 * mean)
}

func (p *FaultProxy) serve(client net.Conn) {
	defer p.wg.Done()
	target, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client, target) {
		client.Close()
		target.Close()
		return
	}
	defer p.untrack(client, target)
	var once sync.Once
	end := func(reset bool) {
		once.Do(func() {
			if reset {
				for _, c := range []net.Conn{client, target} {
					if tc, ok := c.(*net.TCPConn); ok {
						tc.SetLinger(0) // close sends RST
					}
				}
			}
			client.Close()
			target.Close()
		})
	}
	p.mu.Lock()
	up, down := p.up, p.down
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pump(target, client, up, end); done <- struct{}{} }()
	go func() { p.pump(client, target, down, end); done <- struct{}{} }()
	<-done
	end(false)
	<-done
}

// pump copies src to dst, breaking the link after a random number of
// bytes around mean while faults strike.
func (p *FaultProxy) pump(dst, src net.Conn, mean int, end func(reset bool)) {
	budget := p.budget(mean)
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if budget >= 0 && n > budget && time.Now().UnixNano() < p.until.Load() {
				dst.Write(chunk[:budget]) // the fault strikes mid-chunk
				p.fault(end)
				return
			} else if budget >= 0 {
				budget -= n
			}
			if _, werr := dst.Write(chunk); werr != nil {
				end(false)
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				end(false)
			}
			return
		}
	}
}

// fault breaks the link: a close, a reset, or a stall and then a close.
func (p *FaultProxy) fault(end func(reset bool)) {
	p.faults.Add(1)
	switch r := p.intN(100); {
	case r < 40:
		end(false)
	case r < 80:
		end(true)
	default:
		time.Sleep(time.Duration(20+p.intN(200)) * time.Millisecond)
		end(false)
	}
}
