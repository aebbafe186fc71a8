// Package faultproxy is an in-process TCP proxy for fault tests: it forwards loopback
// connections to a target and can cut all of them at once, or refuse new ones, so tests
// can drop a link mid-flight without touching the processes at either end.
package faultproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections accepted on Addr() to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	// mu protects the following fields.
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	refuse  bool
	closed  bool
	accepts int
	wg      sync.WaitGroup
	// cutAfter, when set, cuts the next connection once its client has sent that many
	// bytes (CutAfter), and then closes cutDone.
	cutAfter int64
	cutDone  chan struct{}

	rate atomic.Int64 // bytes per second per direction and connection; 0: unlimited
}

// New starts a proxy on 127.0.0.1:0 forwarding to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address clients should dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted counts the connections the proxy has accepted so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepts
}

// Cut closes every forwarded connection in both directions.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Refuse makes the proxy close new connections at once (true) or forward them again
// (false).
func (p *Proxy) Refuse(refuse bool) {
	p.mu.Lock()
	p.refuse = refuse
	p.mu.Unlock()
}

// SetRate limits every forwarded connection, current and future, to bytesPerSec in each
// direction (0 lifts the limit): a slow link, for tests of large frames over it.
func (p *Proxy) SetRate(bytesPerSec int) { p.rate.Store(int64(bytesPerSec)) }

// CutAfter makes the proxy cut the next connection it accepts once its client has
// sent n bytes, forwarding none past them: a link that drops in the middle of a
// transfer. The channel is closed when the cut has happened.
func (p *Proxy) CutAfter(n int) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutAfter, p.cutDone = int64(max(n, 1)), make(chan struct{})
	return p.cutDone
}

// Close stops the proxy and cuts every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepts++
		refuse := p.refuse || p.closed
		p.mu.Unlock()
		if refuse {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		limit, cut, ok := p.track(c, up)
		if !ok {
			continue
		}
		p.wg.Add(2)
		go p.pipe(c, up, 0, nil)
		go p.pipe(up, c, limit, cut)
	}
}

// track registers a forwarded pair, or closes it when the proxy is closing. It hands
// the pair a pending CutAfter: the byte limit of its client's direction and the
// channel to close when it is reached.
func (p *Proxy) track(a, b net.Conn) (limit int64, cut chan struct{}, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = a.Close()
		_ = b.Close()
		return 0, nil, false
	}
	p.conns[a] = struct{}{}
	p.conns[b] = struct{}{}
	limit, cut = p.cutAfter, p.cutDone
	p.cutAfter, p.cutDone = 0, nil
	return limit, cut, true
}

// pipe copies src to dst, at the rate set by SetRate; when either side ends, both are
// closed. With a limit, it forwards that many bytes, then closes both and cut.
func (p *Proxy) pipe(dst, src net.Conn, limit int64, cut chan struct{}) {
	var forwarded int64
	defer p.wg.Done()
	buf := make([]byte, 16<<10)
	start, sent := time.Now(), int64(0)
	for {
		chunk := buf
		rate := p.rate.Load()
		if rate > 0 {
			chunk = buf[:min(len(buf), max(int(rate/50), 512))] // ~20 ms of data
		}
		n, err := src.Read(chunk)
		if limit > 0 && forwarded+int64(n) >= limit {
			n = int(limit - forwarded)
			_, _ = dst.Write(chunk[:n])
			close(cut)
			break
		}
		forwarded += int64(n)
		if n > 0 {
			if _, werr := dst.Write(chunk[:n]); werr != nil {
				break
			}
			if rate > 0 {
				// Pace: the bytes sent so far may not run ahead of the rate.
				sent += int64(n)
				if ahead := time.Duration(sent*int64(time.Second)/rate) - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			} else {
				start, sent = time.Now(), 0
			}
		}
		if err != nil {
			break
		}
	}
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
