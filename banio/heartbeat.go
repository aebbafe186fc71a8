package banio

import (
	"fmt"
	"strconv"
	"time"
)

// Heartbeats (docs/protocol.md). A client pings every interval (ping → pong, as banbot
// does) and treats a server that sent nothing for the timeout as dead: it drops the
// socket and reconnects. A server closes connections that sent nothing for the timeout.
// Any frame proves liveness, not only pongs. One goroutine per client and one per
// server do this; there is no timer per connection.

// errHeartbeat is why a silent connection was dropped.
var errHeartbeat = fmt.Errorf("%w: no heartbeat", ErrTimeout)

// silentFor reports how long the peer has not shown it is alive, as seen from the
// heartbeat goroutine's ticks. Alive is a decoded message (a ping, a pong, anything
// real) or at least minLiveProgress bytes of a large frame still arriving: a zero-length
// frame, undecodable junk or a trickle of bytes is not. The read loop only counts, so
// that no frame pays for reading the clock; what was counted since the last tick counts
// as now, so silence is never overestimated: a silent peer is dropped within one
// interval after the timeout. Only the connection's one heartbeat goroutine calls it.
func (c *BanConn) silentFor(now time.Time) time.Duration {
	n, p := c.reads.Load(), c.progress.Load()
	if n != c.seen.Load() || p-c.seenProg.Load() >= minLiveProgress {
		c.seen.Store(n)
		c.seenProg.Store(p)
		c.lastRead.Store(now.UnixNano())
	}
	return now.Sub(time.Unix(0, c.lastRead.Load()))
}

// minLiveProgress is how many bytes of a frame still arriving prove, per heartbeat
// interval, that the peer is alive: 4 KiB per 10 s interval, a link of 400 B/s.
const minLiveProgress = 4 << 10

// pingLoop runs for a client's lifetime.
func (c *ClientIO) pingLoop() {
	if c.cfg.heartbeatInterval <= 0 {
		return
	}
	ticker := time.NewTicker(c.cfg.heartbeatInterval)
	defer ticker.Stop()
	var seq int64
	for {
		select {
		case <-c.done:
			return
		case now := <-ticker.C:
			c.out.tidy()
			nc := c.currentSocket()
			if nc == nil {
				continue
			}
			if c.cfg.heartbeatTimeout > 0 && c.silentFor(now) > c.cfg.heartbeatTimeout {
				c.log.Warn("banio: server silent, reconnecting", "silent", c.silentFor(now))
				c.socketFailed(nc, errHeartbeat)
				continue
			}
			seq++
			_ = c.send(actionPing, strconv.AppendInt(nil, seq, 10), nil, true, true, writeOneOff)
		}
	}
}

// sweepLoop runs for a server's lifetime: it closes silent and unauthenticated
// connections and drops expired keys.
func (s *ServerIO) sweepLoop() {
	interval := s.cfg.heartbeatInterval
	if interval <= 0 {
		interval = DefaultHeartbeatInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-ticker.C:
			s.sweep(now)
		}
	}
}

// sweep closes the connections that are dead or never became useful:
//   - a peer that has not authenticated within the handshake timeout (token servers);
//   - a peer that pings (it said hello, or pinged) and has been silent for the timeout;
//   - a peer that has sent nothing decodable since it connected, for the timeout.
//
// A peer that never pinged but has sent real messages is never closed for silence:
// banbot's own server keeps such connections, and some banbot clients (its Telegram
// RPC client) never ping. Closing them would lose their subscriptions without their
// knowing (banbot reconnects but does not subscribe again).
func (s *ServerIO) sweep(now time.Time) {
	timeout := s.cfg.heartbeatTimeout
	for _, c := range s.conns() {
		c.out.tidy()
		silent := c.silentFor(now)
		switch {
		case !c.authed.Load() && now.Sub(c.created) > s.cfg.handshakeTimeout:
			c.closeWithError(fmt.Errorf("%w: no hello within %v", ErrAuthFailed, s.cfg.handshakeTimeout))
		case timeout > 0 && c.pinger.Load() && silent > timeout:
			c.closeWithError(errHeartbeat)
		case timeout > 0 && c.reads.Load() == 0 && silent > timeout:
			c.closeWithError(errNothingValid)
		}
	}
	s.kv.sweep(now)
	s.throttle.sweep(now)
}

// errNothingValid is why a connection that sent nothing decodable was dropped.
var errNothingValid = fmt.Errorf("%w: nothing decodable received since connecting", ErrTimeout)
