package fleettest

import (
	"context"
	"errors"
	"net"
	"sync/atomic"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/internal/faultproxy"
)

// errPartitioned is what a partitioned peer's dial fails with.
var errPartitioned = errors.New("fleettest: the link is partitioned")

// Link is one peer's way to the master: a loopback TCP proxy that can cut the peer's
// connection, or keep it from connecting, without touching the peer or the master.
type Link struct {
	p    *faultproxy.Proxy
	down atomic.Bool // partitioned: dials fail (and so the peer's reconnect backs off)
}

func newLink(target string) (*Link, error) {
	p, err := faultproxy.New(target)
	if err != nil {
		return nil, err
	}
	return &Link{p: p}, nil
}

// Addr is the address the peer dials.
func (l *Link) Addr() string { return l.p.Addr() }

// Cut closes the peer's connections at once, in both directions; the peer reconnects
// through the link, as it would after a network fault.
func (l *Link) Cut() { l.p.Cut() }

// Partition cuts the peer off from the master (true) until it is healed (false): its
// connections are cut, and its dials fail meanwhile, so that it backs off as it would
// from an unreachable host.
func (l *Link) Partition(on bool) {
	l.down.Store(on)
	l.p.Refuse(on) // for a peer that dials without the link's dialer (Fleet.Link)
	if on {
		l.p.Cut()
	}
}

// Connections counts the connections the peer made through the link so far (a
// reconnect adds one).
func (l *Link) Connections() int { return l.p.Accepted() }

// CutAfter cuts the next connection the peer makes through the link once the peer
// has sent n bytes on it, forwarding none past them: a link that drops in the middle
// of a transfer. The channel is closed when the cut has happened.
func (l *Link) CutAfter(n int) <-chan struct{} { return l.p.CutAfter(n) }

// SetRate limits each direction of the peer's connections to bytesPerSec (0: no limit),
// a slow link.
func (l *Link) SetRate(bytesPerSec int) { l.p.SetRate(bytesPerSec) }

// dialer is the peer's banio dialer: it fails while the link is partitioned.
func (l *Link) dialer() banio.Option {
	return banio.WithDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		if l.down.Load() {
			return nil, errPartitioned
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	})
}

func (l *Link) close() { _ = l.p.Close() }
