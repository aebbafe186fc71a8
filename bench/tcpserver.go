package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// loopback is the only address any server of the harness listens on; the
// port is chosen by the kernel.
const loopback = "127.0.0.1:0"

// tcpServer accepts connections on 127.0.0.1 and runs one handler goroutine
// per connection. The handler owns its connection and closes it when done;
// Close closes the listener and every open connection and waits for all
// handlers to return.
type tcpServer struct {
	ln     net.Listener
	handle func(net.Conn)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// startTCPServer listens on 127.0.0.1:0 and serves each accepted connection
// with handle in its own goroutine.
func startTCPServer(handle func(net.Conn)) (*tcpServer, error) {
	ln, err := net.Listen("tcp", loopback)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", loopback, err)
	}
	s := &tcpServer{ln: ln, handle: handle, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *tcpServer) Addr() string { return s.ln.Addr().String() }

func (s *tcpServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // listener closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.handle(c)
		}()
	}
}

// Close stops accepting, closes every connection and waits for the
// handlers to return.
func (s *tcpServer) Close() error {
	s.mu.Lock()
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// dialLoopback connects to addr with TCP, honouring ctx.
func dialLoopback(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return c, nil
}

// connCanceller makes a blocking connection honour the context of whatever
// call uses it: when that context is cancelled, the connection's deadline is
// set in the past, so pending reads and writes fail at once. It registers
// one context.AfterFunc per distinct context, not per call, and clears the
// deadline again when the next call brings a new context.
type connCanceller struct {
	conn  net.Conn
	done  <-chan struct{}
	stop  func() bool
	fired chan struct{} // closed when the armed AfterFunc has finished
}

// watch arms the canceller for ctx if it is not armed for it already.
func (cc *connCanceller) watch(ctx context.Context) {
	d := ctx.Done()
	if d == cc.done {
		return
	}
	cc.release()
	cc.done = d
	if d == nil {
		return
	}
	conn, fired := cc.conn, make(chan struct{})
	cc.fired = fired
	cc.stop = context.AfterFunc(ctx, func() {
		defer close(fired)
		conn.SetDeadline(time.Unix(1, 0))
	})
}

// release disarms the canceller; if its context had already fired, it
// waits for the deadline to be set and then clears it, so the connection
// is usable by the next context.
func (cc *connCanceller) release() {
	if cc.stop != nil && !cc.stop() {
		<-cc.fired
		cc.conn.SetDeadline(time.Time{})
	}
	cc.stop, cc.fired, cc.done = nil, nil, nil
}
