package uplink_test

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

// faultProxy sits between a client and a broker on loopback and breaks
// the link the way field links break: after a random number of bytes in
// either direction (so mid-packet, mid-batch, mid-PUBACK) it closes
// both sides, resets them (RST), stalls and then closes, stalls and
// then carries on, or swallows everything (a half-open link only
// keepalives and PUBACK timeouts notice). It can also refuse every
// connection (no link at all).
type faultProxy struct {
	ln     net.Listener
	target string
	refuse atomic.Bool

	mu       sync.Mutex
	rng      *rand.Rand
	upMean   int // mean bytes client→broker before a fault; 0: none
	downMean int // mean bytes broker→client before a fault; 0: none
	conns    map[net.Conn]struct{}
	closed   bool

	accepted, drops, resets, stalls, blackholes atomic.Int64
	wg                                          sync.WaitGroup
}

func startFaultProxy(t testing.TB, target string, seed uint64, upMean, downMean int) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		upMean: upMean, downMean: downMean, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) URL() string { return "tcp://" + p.ln.Addr().String() }

// setFaults changes the mean bytes between faults (0: a clean link).
func (p *faultProxy) setFaults(up, down int) {
	p.mu.Lock()
	p.upMean, p.downMean = up, down
	p.mu.Unlock()
}

func (p *faultProxy) faults() int64 {
	return p.drops.Load() + p.resets.Load() + p.stalls.Load() + p.blackholes.Load()
}

func (p *faultProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			c.Close()
			continue
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *faultProxy) track(cs ...net.Conn) bool {
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

func (p *faultProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// budget draws the bytes a direction carries before its fault; -1 is
// no fault.
func (p *faultProxy) budget(mean int) int {
	if mean <= 0 {
		return -1
	}
	return p.intN(2 * mean)
}

func (p *faultProxy) intN(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.IntN(n)
}

func (p *faultProxy) serve(client net.Conn) {
	defer p.wg.Done()
	broker, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client, broker) {
		client.Close()
		broker.Close()
		return
	}
	defer p.untrack(client, broker)
	var once sync.Once
	end := func(reset bool) {
		once.Do(func() {
			if reset {
				for _, c := range []net.Conn{client, broker} {
					if tc, ok := c.(*net.TCPConn); ok {
						tc.SetLinger(0) // close sends RST
					}
				}
			}
			client.Close()
			broker.Close()
		})
	}
	p.mu.Lock()
	up, down := p.upMean, p.downMean
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pump(broker, client, up, end); done <- struct{}{} }()
	go func() { p.pump(client, broker, down, end); done <- struct{}{} }()
	<-done
	end(false)
	<-done
}

// pump copies src to dst, breaking the link after a random number of
// bytes around mean (none when mean is 0).
func (p *faultProxy) pump(dst, src net.Conn, mean int, end func(reset bool)) {
	budget := p.budget(mean)
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if budget >= 0 && n > budget {
				dst.Write(chunk[:budget]) // the fault strikes mid-chunk
				if p.fault(dst, src, end) {
					return
				}
				chunk = chunk[budget:]
				budget = p.budget(mean)
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

// fault breaks the link one way; it returns false when the link goes on
// (a stall that passes).
func (p *faultProxy) fault(dst, src net.Conn, end func(reset bool)) bool {
	switch r := p.intN(100); {
	case r < 35:
		p.drops.Add(1)
		end(false)
	case r < 65:
		p.resets.Add(1)
		end(true)
	case r < 80:
		p.stalls.Add(1)
		time.Sleep(time.Duration(20+p.intN(200)) * time.Millisecond)
		end(false)
	case r < 95:
		p.stalls.Add(1)
		time.Sleep(time.Duration(20+p.intN(200)) * time.Millisecond)
		return false
	default:
		// Half-open: swallow everything until the client gives up.
		p.blackholes.Add(1)
		io.Copy(io.Discard, src)
		end(false)
	}
	return true
}

// killAll resets every connection through the proxy now.
func (p *faultProxy) killAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}
