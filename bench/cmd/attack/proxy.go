package main

import (
	"net"
	"sync"
	"time"
)

// throttle is a TCP proxy on loopback that forwards each connection to the master
// at a fixed rate per direction, like a slow link. Its sockets have small buffers
// so that the kernel does not hide the limit behind megabytes of buffering.
type throttle struct {
	ln     net.Listener
	target string
	rate   int // bytes per second, each direction
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

const throttleChunk = 16 << 10

func newThrottle(target string, rate int) (*throttle, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &throttle{ln: ln, target: target, rate: rate}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *throttle) addr() string { return p.ln.Addr().String() }

func (p *throttle) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		for _, c := range []net.Conn{in, out} {
			tc := c.(*net.TCPConn)
			_ = tc.SetReadBuffer(throttleChunk * 4)
			_ = tc.SetWriteBuffer(throttleChunk * 4)
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies src to dst at p.rate, then closes both.
func (p *throttle) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, throttleChunk)
	start, sent := time.Now(), 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			sent += n
			due := start.Add(time.Duration(float64(sent) / float64(p.rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			} else if d < -time.Second {
				start, sent = time.Now(), 0 // an idle spell earns no burst
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed socket: the link is down both ways
		}
	}
}

// close stops the proxy and every connection through it, waiting (bounded).
func (p *throttle) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}
