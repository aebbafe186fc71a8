package fleettest

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/internal/faultproxy"
)

// errPartitioned is what a partitioned peer's dial fails with.
var errPartitioned = errors.New("fleettest: the link is partitioned")

// Link is one peer's way to the master, which can cut the peer's connection, or keep it
// from connecting, without touching the peer or the master.
//
// The fleet's own workers and LinkedClients dial the master through the link's dialer:
// a dial fails, as a direct one would, while the master is down or the link is
// partitioned, and Cut closes the connections it made. A peer the test connects itself
// dials Addr, a loopback TCP proxy in front of the master (Fleet.Link).
type Link struct {
	target string
	p      *faultproxy.Proxy // nil for a link whose peer dials through dialer
	down   atomic.Bool       // partitioned: dials fail (and so the peer backs off)

	// mu protects the following fields.
	mu       sync.Mutex
	conns    map[*linkConn]struct{}
	dials    int
	cutAfter int64         // CutAfter's byte count for the next connection, 0 for none
	cutDone  chan struct{} // closed when that cut has happened
}

// newLink is a link for a peer that dials through its dialer.
func newLink(target string) *Link {
	return &Link{target: target, conns: make(map[*linkConn]struct{})}
}

// newProxyLink is a link for a peer that dials its Addr.
func newProxyLink(target string) (*Link, error) {
	p, err := faultproxy.New(target)
	if err != nil {
		return nil, err
	}
	l := newLink(target)
	l.p = p
	return l, nil
}

// Addr is the address the peer dials: the proxy's, or the master's for a peer that
// dials through the link's dialer.
func (l *Link) Addr() string {
	if l.p != nil {
		return l.p.Addr()
	}
	return l.target
}

// Cut closes the peer's connections at once; the peer reconnects, as it would after a
// network fault.
func (l *Link) Cut() {
	if l.p != nil {
		l.p.Cut()
	}
	l.mu.Lock()
	conns := make([]*linkConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Partition cuts the peer off from the master (true) until it is healed (false): its
// connections are cut, and its dials fail meanwhile (a proxy link accepts them and
// closes them at once).
func (l *Link) Partition(on bool) {
	l.down.Store(on)
	if l.p != nil {
		l.p.Refuse(on)
	}
	if on {
		l.Cut()
	}
}

// Connections counts the connections the peer made through the link so far (a
// reconnect adds one).
func (l *Link) Connections() int {
	if l.p != nil {
		return l.p.Accepted()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dials
}

// CutAfter cuts the next connection the peer makes through the link once the peer
// has sent n bytes on it, sending none past them: a link that drops in the middle of
// a transfer. The channel is closed when the cut has happened.
func (l *Link) CutAfter(n int) <-chan struct{} {
	if l.p != nil {
		return l.p.CutAfter(n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cutAfter, l.cutDone = int64(max(n, 1)), make(chan struct{})
	return l.cutDone
}

// dialer is the banio dialer of a peer of the link.
func (l *Link) dialer() banio.Option {
	return banio.WithDialer(l.dial)
}

func (l *Link) dial(ctx context.Context, addr string) (net.Conn, error) {
	if l.down.Load() {
		return nil, errPartitioned
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &linkConn{Conn: nc, l: l}
	l.mu.Lock()
	l.dials++
	l.conns[c] = struct{}{}
	c.left, c.cutDone = l.cutAfter, l.cutDone
	l.cutAfter, l.cutDone = 0, nil
	l.mu.Unlock()
	if l.down.Load() { // partitioned while dialling
		_ = c.Close()
		return nil, errPartitioned
	}
	return c, nil
}

func (l *Link) close() {
	if l.p != nil {
		_ = l.p.Close()
	}
	l.Cut()
}

// linkConn is a connection a link's dialer made: Cut closes it, CutAfter ends it.
type linkConn struct {
	net.Conn
	l *Link

	// Owned by the peer's writer: bytes it may still send before CutAfter's cut (0:
	// no cut), and the channel that says the cut happened.
	left    int64
	cutDone chan struct{}
	once    sync.Once
}

func (c *linkConn) Write(b []byte) (int, error) {
	if c.cutDone == nil {
		return c.Conn.Write(b)
	}
	if int64(len(b)) < c.left {
		n, err := c.Conn.Write(b)
		c.left -= int64(n)
		return n, err
	}
	n, _ := c.Conn.Write(b[:c.left])
	_ = c.Close()
	close(c.cutDone)
	c.cutDone = nil
	return n, net.ErrClosed
}

func (c *linkConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
