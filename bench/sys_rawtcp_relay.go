package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"
)

// rawRelay is rawtcp-relay-w4: the floor of a broker hop over raw TCP, with nothing of
// banfleet in it. Callers share one client connection (rawtcp-mux framing: length,
// request id, payload) to a stateless relay, which forwards each request to one of 4
// echo workers in turn and each answer back to the client, keeping no state: the
// worker echoes the id, whose top 16 bits name the client connection.
//
// The relay writes the way nats-server does (server/client.go): a read loop that
// delivers to another connection only appends the frame to that connection's pending
// buffer and notes the connection in its own flush set; when its read buffer is
// consumed it yields once, so that the other read loops' appends join, then signals
// each connection it touched once. Each connection has one writer goroutine, the only
// writer of its socket, which swaps the pending buffer out and writes it in one call.
// So under load there is one read per ≤64 KiB of input and one write per destination
// per wake-up, no goroutine per message and no write on a read loop.
//
// With owned set it is rawtcp-relay-owned-w4, the relay doing what dispatch-w4's master,
// workers and client must: see sys_rawtcp_relay_owned.go. With durable set it is
// rawtcp-relay-durable-w4, which forwards a request only once it is on disk: see
// sys_rawtcp_relay_durable.go.
type rawRelay struct {
	workers int
	owned   bool
	durable bool
	early   bool // rawtcp-relay-durable-early-w4

	srv     *tcpServer
	relay   *relayState
	workerC []net.Conn // the workers' connections (echo servers, in this process)
	wdone   sync.WaitGroup
	cl      *muxClient
}

func newRawRelay(workers int) *rawRelay { return &rawRelay{workers: workers} }

// Roles a connection announces to the relay with its first byte.
const (
	roleClient = 'C'
	roleWorker = 'W'
)

// clientShift puts the client connection's index in the top bits of a relayed id.
const clientShift = 48

// Start starts the relay, its workers (registered before any call) and the client.
func (s *rawRelay) Start(ctx context.Context) error {
	s.relay = &relayState{registered: make(chan struct{}, s.workers)}
	if s.owned {
		s.relay.kept = make(map[uint64][]byte)
	}
	if s.durable {
		log, err := openRelayLog(s.early)
		if err != nil {
			return err
		}
		s.relay.log = log
	}
	srv, err := startTCPServer(s.relay.serve)
	if err != nil {
		return err
	}
	s.srv = srv
	for range s.workers {
		c, err := dialLoopback(ctx, srv.Addr())
		if err != nil {
			return err
		}
		s.workerC = append(s.workerC, c)
		if _, err := c.Write([]byte{roleWorker}); err != nil {
			return err
		}
		s.wdone.Add(1)
		serve := serveMux
		if s.owned {
			serve = serveMuxOwned
		}
		go func() { defer s.wdone.Done(); serve(c) }() // echo, ids untouched
	}
	for range s.workers {
		select {
		case <-s.relay.registered:
		case <-ctx.Done():
			return fmt.Errorf("rawtcp-relay: workers not registered: %w", ctx.Err())
		}
	}
	c, err := dialLoopback(ctx, srv.Addr())
	if err != nil {
		return err
	}
	if _, err := c.Write([]byte{roleClient}); err != nil {
		c.Close()
		return err
	}
	s.cl = newMuxClient(c, s.owned)
	return nil
}

// NewCaller returns a Caller on the shared client connection.
func (s *rawRelay) NewCaller() (Caller, error) {
	if s.cl == nil {
		return nil, errors.New("rawtcp-relay: not started")
	}
	return &muxCaller{cl: s.cl, call: newMuxCall()}, nil
}

// Close closes the client, the workers and the relay.
func (s *rawRelay) Close() error {
	if s.cl != nil {
		s.cl.close()
	}
	for _, c := range s.workerC {
		c.Close()
	}
	s.wdone.Wait()
	var err error
	if s.srv != nil {
		err = s.srv.Close()
	}
	if s.relay != nil && s.relay.log != nil {
		s.relay.log.close()
	}
	return err
}

// relayState is the relay's routing table: its workers and clients by index.
type relayState struct {
	registered chan struct{} // one per worker connection registered

	mu      sync.Mutex
	workers []*relayConn
	clients []*relayConn
	next    int // the worker the next request goes to
	// kept: rawtcp-relay-owned's requests by relayed id, each in memory of its own,
	// until their answers pass (nil: the stateless relay).
	kept map[uint64][]byte
	// log: rawtcp-relay-durable's requests go through it to their workers (nil: they
	// are forwarded at once).
	log *relayLog
}

// serve runs one relay connection: its role byte, then its read loop.
func (rs *relayState) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	role, err := r.ReadByte()
	if err != nil {
		return
	}
	rc := newRelayConn(c)
	defer rc.close()
	rs.mu.Lock()
	index := len(rs.clients)
	if role == roleWorker {
		rs.workers = append(rs.workers, rc)
	} else {
		rs.clients = append(rs.clients, rc)
	}
	rs.mu.Unlock()
	if role == roleWorker {
		rs.registered <- struct{}{}
	}
	rs.readLoop(r, rc, role == roleClient, uint64(index))
}

// readLoop forwards every frame read from one connection: a client's requests to the
// workers in turn, a worker's answers to their client. Deliveries are appended; the
// connections touched are signalled once the read buffer is consumed.
func (rs *relayState) readLoop(r *bufio.Reader, self *relayConn, fromClient bool, clientIndex uint64) {
	var hdr [muxHeader]byte
	var body []byte
	var touched []*relayConn
	for {
		n, id, err := readMuxHeader(r, &hdr)
		if err != nil {
			return
		}
		keep := fromClient && rs.kept != nil
		if keep {
			body = nil // read into memory of its own, kept until the answer passes
		}
		if body, err = readBody(r, body, n); err != nil {
			return
		}
		relayed := id // an answer's id as the relay numbered its request
		var dst *relayConn
		rs.mu.Lock()
		if fromClient {
			dst = rs.workers[rs.next%len(rs.workers)]
			rs.next++
			id |= clientIndex << clientShift
			if keep {
				rs.kept[id] = body
			}
		} else if ci := int(id >> clientShift); ci < len(rs.clients) {
			if rs.kept != nil {
				delete(rs.kept, id)
			}
			dst = rs.clients[ci]
			id &= 1<<clientShift - 1
		}
		rs.mu.Unlock()
		if dst == nil {
			continue
		}
		appended := false
		switch {
		case fromClient && rs.log != nil && rs.log.early:
			rs.log.add(nil, id, body) // logged, and forwarded at once
			appended = dst.appendFrame(id, body)
		case fromClient && rs.log != nil:
			rs.log.add(dst, id, body) // forwarded once on disk
		case rs.log != nil && rs.log.early:
			appended = rs.log.answer(dst, relayed, id, body) // held until its request is on disk
		default:
			appended = dst.appendFrame(id, body)
		}
		if appended {
			touched = append(touched, dst)
		}
		if r.Buffered() == 0 {
			// The read batch is consumed: let the other read loops' appends join,
			// then flush each destination once.
			runtime.Gosched()
			for _, c := range touched {
				c.flush()
			}
			clear(touched)
			touched = touched[:0]
		}
	}
}

// relayConn is one connection's write side: a pending buffer that read loops append
// to, and the writer goroutine that alone writes the socket.
type relayConn struct {
	conn net.Conn

	mu      sync.Mutex
	buf     []byte
	flagged bool // appended to since the last flush: some read loop will signal
	err     error

	kick chan struct{}
	done chan struct{}
}

func newRelayConn(c net.Conn) *relayConn {
	rc := &relayConn{conn: c, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go rc.writeLoop()
	return rc
}

// appendFrame appends one frame; it reports whether the caller is the first to do so
// since the last flush, and so must flush it.
func (rc *relayConn) appendFrame(id uint64, p []byte) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.err != nil {
		return false
	}
	rc.buf = appendMuxFrame(grow(rc.buf, muxHeader+len(p)), id, p)
	first := !rc.flagged
	rc.flagged = true
	return first
}

// flush signals the writer goroutine.
func (rc *relayConn) flush() {
	rc.mu.Lock()
	rc.flagged = false
	rc.mu.Unlock()
	select {
	case rc.kick <- struct{}{}:
	default:
	}
}

func (rc *relayConn) writeLoop() {
	var spare []byte
	for {
		select {
		case <-rc.done:
			return
		case <-rc.kick:
		}
		rc.mu.Lock()
		out := rc.buf
		rc.buf = spare[:0]
		rc.mu.Unlock()
		if len(out) > 0 {
			_ = rc.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := rc.conn.Write(out); err != nil {
				rc.mu.Lock()
				rc.err = err
				rc.mu.Unlock()
				return
			}
		}
		spare = out
		if cap(spare) > maxSpare {
			spare = nil
		}
	}
}

// close stops the writer goroutine (the socket is closed by serve).
func (rc *relayConn) close() { close(rc.done) }

// Interface check.
var _ System = (*rawRelay)(nil)
