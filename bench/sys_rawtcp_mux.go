package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// mux is rawtcp-mux: any number of callers share ONE TCP connection; every
// request carries a uint64 id, and each side has one coalescing writer
// goroutine and one reader goroutine. The client reader hands each reply to
// the waiting call by id; the server reader echoes inline into its writer.
// It is the throughput floor this machine allows for a multiplexed
// connection, with no codec, no headers and no per-call goroutine.
type mux struct {
	owned bool // rawtcp-mux-owned (sys_rawtcp_mux_owned.go)
	srv   *tcpServer
	cl    *muxClient
}

func newMux() *mux { return &mux{} }

// Start starts the echo server and the shared client connection.
func (m *mux) Start(ctx context.Context) error {
	serve := serveMux
	if m.owned {
		serve = serveMuxOwned
	}
	srv, err := startTCPServer(serve)
	if err != nil {
		return err
	}
	m.srv = srv
	conn, err := dialLoopback(ctx, srv.Addr())
	if err != nil {
		return err
	}
	m.cl = newMuxClient(conn, m.owned)
	return nil
}

// NewCaller returns a Caller on the shared connection.
func (m *mux) NewCaller() (Caller, error) {
	if m.cl == nil {
		return nil, errors.New("rawtcp-mux: not started")
	}
	return &muxCaller{cl: m.cl, call: newMuxCall()}, nil
}

// Close closes the client connection and the server.
func (m *mux) Close() error {
	if m.cl != nil {
		m.cl.close()
	}
	if m.srv != nil {
		return m.srv.Close()
	}
	return nil
}

// serveMux echoes rawtcp-mux frames on c: its reader copies each payload
// straight into the connection's coalescing writer.
func serveMux(c net.Conn) {
	w := newCoalescer(c)
	defer w.close()
	defer c.Close() // before w.close: unblocks a writer stuck in Write
	r := bufio.NewReaderSize(c, 64<<10)
	var hdr [muxHeader]byte
	var body []byte
	for {
		n, id, err := readMuxHeader(r, &hdr)
		if err != nil {
			return
		}
		if body, err = readBody(r, body, n); err != nil {
			return
		}
		if err := w.send(id, body); err != nil {
			return
		}
	}
}

// muxCall is one outstanding call: the reader fills reply (or err) and then
// signals done. A Caller reuses its muxCall for every call, so steady state
// allocates nothing; a call abandoned to a cancelled context is left to the
// reader and replaced.
type muxCall struct {
	reply []byte
	err   error
	done  chan struct{}
}

func newMuxCall() *muxCall { return &muxCall{done: make(chan struct{}, 1)} }

// muxClient is the client side of the shared connection.
type muxClient struct {
	conn net.Conn
	w    *coalescer

	mu      sync.Mutex
	pending map[uint64]*muxCall
	nextID  uint64
	err     error // set once the reader has stopped
	// owned: each reply is read into memory of its own, which the caller keeps
	// (rawtcp-mux-owned); otherwise into the call's reused buffer.
	owned bool

	readerDone chan struct{}
}

func newMuxClient(conn net.Conn, owned bool) *muxClient {
	cl := &muxClient{
		conn:       conn,
		owned:      owned,
		w:          newCoalescer(conn),
		pending:    map[uint64]*muxCall{},
		readerDone: make(chan struct{}),
	}
	go cl.readLoop()
	return cl
}

// readLoop hands every reply to its call until the connection fails, then
// fails every call still pending.
func (cl *muxClient) readLoop() {
	defer close(cl.readerDone)
	r := bufio.NewReaderSize(cl.conn, 64<<10)
	var hdr [muxHeader]byte
	err := func() error {
		for {
			n, id, err := readMuxHeader(r, &hdr)
			if err != nil {
				return fmt.Errorf("read reply header: %w", err)
			}
			cl.mu.Lock()
			call := cl.pending[id]
			delete(cl.pending, id)
			cl.mu.Unlock()
			if call == nil { // abandoned by a cancelled caller
				if _, err := r.Discard(n); err != nil {
					return fmt.Errorf("discard reply: %w", err)
				}
				continue
			}
			if cl.owned {
				call.reply = nil
			}
			call.reply, err = readBody(r, call.reply, n)
			if err != nil {
				call.err = fmt.Errorf("read reply: %w", err)
				call.done <- struct{}{}
				return call.err
			}
			call.done <- struct{}{}
		}
	}()
	cl.mu.Lock()
	cl.err = err
	for id, call := range cl.pending {
		call.err = err
		call.done <- struct{}{}
		delete(cl.pending, id)
	}
	cl.mu.Unlock()
}

// close closes the connection and waits for the reader and the writer.
func (cl *muxClient) close() {
	cl.conn.Close()
	cl.w.close()
	<-cl.readerDone
}

// muxCaller is one caller on a muxClient.
type muxCaller struct {
	cl   *muxClient
	call *muxCall
}

// Call registers a new request id, queues the frame on the shared writer
// and waits for the reader to deliver the reply.
func (c *muxCaller) Call(ctx context.Context, payload []byte) ([]byte, error) {
	cl, call := c.cl, c.call
	call.err = nil
	cl.mu.Lock()
	if cl.err != nil {
		err := cl.err
		cl.mu.Unlock()
		return nil, err
	}
	cl.nextID++
	id := cl.nextID
	cl.pending[id] = call
	cl.mu.Unlock()

	if err := cl.w.send(id, payload); err != nil {
		c.abandon(id)
		return nil, fmt.Errorf("send: %w", err)
	}
	select {
	case <-call.done:
		if call.err != nil {
			return nil, call.err
		}
		return call.reply, nil
	case <-ctx.Done():
		c.abandon(id)
		return nil, ctx.Err()
	}
}

// abandon forgets request id. If the reader already took the call, the
// call's buffers now belong to the reader, so the caller gets fresh ones.
func (c *muxCaller) abandon(id uint64) {
	c.cl.mu.Lock()
	_, still := c.cl.pending[id]
	delete(c.cl.pending, id)
	c.cl.mu.Unlock()
	if !still {
		c.call = newMuxCall()
	}
}

// Interface checks.
var (
	_ System     = (*mux)(nil)
	_ System     = (*pingPong)(nil)
	_ CaseFilter = (*pingPong)(nil)
)
