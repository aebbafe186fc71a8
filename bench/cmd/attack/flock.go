package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// A flock is many raw attacker connections, each writing a frame at an interval
// and counting what the master sends back, until it closes them or we do.

type fconn struct {
	p        *rawPeer
	got      atomic.Int64 // frames received from the master
	closed   chan struct{}
	closedAt time.Time // valid once closed is closed
	opened   time.Time
}

type flock struct {
	conns   []*fconn
	dialErr int
	lastErr error
	wg      sync.WaitGroup
}

// dialFlock opens n connections from `sources` 127.0.0.x addresses, 64 at a time,
// each dial bounded by timeout. Failed dials are counted, not retried.
func dialFlock(ctx context.Context, addr string, n, sources int, timeout time.Duration) *flock {
	f := &flock{}
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p, err := dialRaw(addr, loopbackSource(i, sources), timeout)
				mu.Lock()
				if err != nil {
					f.dialErr++
					f.lastErr = err
				} else {
					c := &fconn{p: p, closed: make(chan struct{}), opened: time.Now()}
					f.conns = append(f.conns, c)
					f.wg.Add(1)
					go c.read(&f.wg)
				}
				mu.Unlock()
			}
		}()
	}
loop:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break loop
		}
	}
	close(next)
	wg.Wait()
	return f
}

// read counts frames until the connection ends.
func (c *fconn) read(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		if _, err := readFrameBody(c.p.br, 1<<20); err != nil {
			c.closedAt = time.Now()
			close(c.closed)
			return
		}
		c.got.Add(1)
	}
}

func (c *fconn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// keep writes b on every connection every interval (the first at once) until ctx
// ends or the connection closes.
func (f *flock) keep(ctx context.Context, b []byte, interval time.Duration) {
	for _, c := range f.conns {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				if err := c.p.send(b, 2*time.Second); err != nil {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-c.closed:
					return
				case <-tick.C:
				}
			}
		}()
	}
}

// counts returns how many connections are open and how many got at least one frame.
func (f *flock) counts() (open, served int) {
	for _, c := range f.conns {
		if !c.isClosed() {
			open++
		}
		if c.got.Load() > 0 {
			served++
		}
	}
	return open, served
}

// closedWithin counts connections the master closed within d of opening.
func (f *flock) closedWithin(d time.Duration) int {
	n := 0
	for _, c := range f.conns {
		if c.isClosed() && c.closedAt.Sub(c.opened) <= d {
			n++
		}
	}
	return n
}

// close closes every connection and waits (bounded) for their goroutines.
func (f *flock) close() {
	for _, c := range f.conns {
		c.p.close()
	}
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

func (f *flock) dialSummary() string {
	if f.dialErr == 0 {
		return fmt.Sprintf("%d connected", len(f.conns))
	}
	return fmt.Sprintf("%d connected, %d dials failed (%s)", len(f.conns), f.dialErr, shortErr(f.lastErr))
}
