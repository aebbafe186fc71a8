package banio

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ServerIO accepts BanIO connections, keeps the shared key/value store and broadcasts
// to subscribers. Set InitConn before serving to register handlers on each new
// connection.
type ServerIO struct {
	Addr     string         // listen address for RunForever
	Name     string         // for logs
	InitConn func(*BanConn) // called for each accepted connection before it is read

	cfg    config
	cfgErr error
	log    *slog.Logger
	done   chan struct{}

	// mu protects the following fields.
	mu        sync.Mutex
	all       map[*BanConn]struct{}
	listeners map[net.Listener]struct{}
	closed    bool
	sweeping  bool

	perHost  map[string]int // admitted connections by peer host (connection limits)
	admitted int            // connections admitted by Serve and not yet forgotten
	maxConns int            // the total cap in force: WithMaxConns, within the fd limit

	kv            kvStore
	throttle      authThrottle
	authLog       logLimiter // failed authentications, for the whole server
	strangerLog   logLimiter // junk from peers that never sent anything valid, for the whole server
	refuseLog     logLimiter // refused connections, for the whole server
	slowConsumers atomic.Uint64
	refused       atomic.Uint64
	redirected    atomic.Uint64          // connections answered not_leader (follow.go)
	notLeader     atomic.Pointer[string] // the leader's address while a follower (SetNotLeader)
}

// NewBanServer makes a server for addr. name appears in logs. Option errors (an
// invalid AES key, say) are reported by Serve and RunForever.
func NewBanServer(addr, name string, opts ...Option) *ServerIO {
	cfg, err := buildConfig(opts)
	s := &ServerIO{
		Addr:      addr,
		Name:      name,
		cfg:       cfg,
		cfgErr:    err,
		done:      make(chan struct{}),
		all:       make(map[*BanConn]struct{}),
		listeners: make(map[net.Listener]struct{}),
		perHost:   make(map[string]int),
		kv:        kvStore{m: make(map[string]kvEntry)},
	}
	s.maxConns = connCap(cfg.maxConns)
	s.throttle.base, s.throttle.max = cfg.authPenalty, cfg.maxAuthPenalty
	s.log = cfg.logger.With("server", name)
	return s
}

// RunForever listens on Addr and serves until Close.
func (s *ServerIO) RunForever() error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("banio: listen %s: %w", s.Addr, err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Close, like http.Server.Serve. It returns
// ErrServerClosed after Close. Temporary accept errors (out of file descriptors, say)
// are logged and retried after a pause instead of ending the server.
func (s *ServerIO) Serve(ln net.Listener) error {
	if s.cfgErr != nil {
		_ = ln.Close()
		return s.cfgErr
	}
	if s.cfg.tls != nil {
		ln = tls.NewListener(ln, s.cfg.tls)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	if !s.sweeping {
		s.sweeping = true
		go s.sweepLoop()
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var pause time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				s.log.Warn("banio: accept failed, retrying", "err", err, "pause", pause)
				select {
				case <-time.After(pause):
				case <-s.done:
					return ErrServerClosed
				}
				continue
			}
			return fmt.Errorf("banio: accept: %w", err)
		}
		pause = 0
		go s.serveConn(nc)
	}
}

// serveConn runs one accepted connection to its end, unless the connection limits or
// the authentication throttle refuse it.
func (s *ServerIO) serveConn(nc net.Conn) {
	host := hostOf(nc.RemoteAddr())
	if code, reason := s.admit(host); code != "" {
		s.refuse(nc, host, code, reason)
		return
	}
	c := s.wrapConn(nc, host)
	if c.IsClosed() {
		return
	}
	if s.InitConn != nil {
		s.InitConn(c)
	}
	_ = c.RunForever()
}

// WrapConn makes a server-side BanConn of nc with the server's options and built-in
// actions, and tracks it for Broadcast and Close. The caller runs it with RunForever.
// Connections wrapped here do not count against the connection limits, which Serve
// applies to what it accepts.
func (s *ServerIO) WrapConn(nc net.Conn) *BanConn { return s.wrapConn(nc, "") }

// wrapConn is WrapConn for a connection admitted for host ("" for one not admitted).
func (s *ServerIO) wrapConn(nc net.Conn, host string) *BanConn {
	c := newConn(&s.cfg, nc)
	c.server = s
	c.addrKey = host
	// A follower without a token requires a hello too: it is answered not_leader
	// (refuseUnauthenticated), like any other first frame.
	c.authed.Store(s.cfg.token == "" && s.notLeader.Load() == nil)
	if s.cfg.token != "" || s.cfg.tls != nil {
		// The hello must come within the handshake timeout (and, over TLS, so must the
		// TLS handshake); onHello lifts the deadline.
		_ = nc.SetReadDeadline(c.created.Add(s.cfg.handshakeTimeout))
	}
	c.Listen(actionGetVal, func(m *IOMsgRaw) { s.onGetVal(c, m) })
	c.Listen(actionSetVal, func(m *IOMsgRaw) { s.onSetVal(c, m) })
	c.Listen(actionLock, func(m *IOMsgRaw) { s.onLock(c, m) })
	c.Listen(actionUnlock, func(m *IOMsgRaw) { s.onUnlock(c, m) })
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.all[c] = struct{}{}
	}
	s.mu.Unlock()
	if closed {
		c.closeWithError(ErrServerClosed)
	}
	return c
}

// forget drops a closed connection.
func (s *ServerIO) forget(c *BanConn) {
	s.mu.Lock()
	delete(s.all, c)
	if c.addrKey != "" {
		s.releaseLocked(c.addrKey)
	}
	s.mu.Unlock()
}

func (s *ServerIO) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// conns returns a snapshot of the open connections.
func (s *ServerIO) conns() []*BanConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*BanConn, 0, len(s.all))
	for c := range s.all {
		out = append(out, c)
	}
	return out
}

// Conns returns a snapshot of the open connections.
func (s *ServerIO) Conns() []IBanConn {
	cs := s.conns()
	out := make([]IBanConn, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
}

// SlowConsumers counts connections cut because their write queue overflowed during a
// Broadcast.
func (s *ServerIO) SlowConsumers() uint64 { return s.slowConsumers.Load() }

// Close stops accepting and closes every connection. Serve returns ErrServerClosed.
func (s *ServerIO) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	s.mu.Unlock()
	for _, ln := range lns {
		_ = ln.Close()
	}
	var wg sync.WaitGroup
	for _, c := range s.conns() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.closeWithError(ErrServerClosed)
		}()
	}
	wg.Wait()
	return nil
}

// Broadcast sends msg to every connection subscribed to exactly msg.Action
// (GetData(msg.Action) present). The message is marshalled and encoded once per codec,
// and queued on each subscriber in call order, so every subscriber sees broadcasts in
// the order they were made. A subscriber whose write queue is past its bound is
// disconnected (counted by SlowConsumers) instead of stalling the others. The error is
// only about marshalling; delivery is asynchronous.
func (s *ServerIO) Broadcast(msg *IOMsg) error {
	data, tail, present, err := marshalData(msg.Data)
	if err != nil {
		return err
	}
	var frames [3][]byte // by wireCodec; built on first need
	var bufs [3]*[]byte
	defer func() {
		for _, b := range bufs {
			if b != nil {
				putBuf(b)
			}
		}
	}()
	for _, c := range s.conns() {
		if _, ok := c.GetData(msg.Action); !ok {
			continue
		}
		codec := c.sendCodec()
		i := int(codec)
		if frames[i] == nil {
			bufs[i] = getBuf()
			frames[i], err = encodeFrameWith((*bufs[i])[:0], &s.cfg, msg.Action, data, tail, present, msg.NoEncrypt, codec)
			*bufs[i] = frames[i]
			if err != nil {
				return err
			}
		}
		if err := c.peerAccepts(len(frames[i])); err != nil {
			c.badLog.log(c.log, slog.LevelWarn, "banio: broadcast not sent to this subscriber", "action", msg.Action, "err", err)
			continue
		}
		if err := c.out.write(frames[i], writeNoBlock); errors.Is(err, ErrSlowConsumer) {
			s.slowConsumers.Add(1)
			s.log.Warn("banio: slow consumer disconnected", "remote", c.remote, "action", msg.Action)
		}
	}
	return nil
}
