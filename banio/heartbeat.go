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

// silentFor reports how long nothing was read from the connection, as seen from the
// heartbeat goroutine's ticks: the read loop only counts frames, so that no frame pays
// for reading the clock. A frame read since the last tick counts as read now, so
// silence is never overestimated: a silent peer is dropped within one interval after
// the timeout. Only the connection's one heartbeat goroutine calls it.
func (c *BanConn) silentFor(now time.Time) time.Duration {
	if n := c.reads.Load(); n != c.seen.Load() {
		c.seen.Store(n)
		c.lastRead.Store(now.UnixNano())
	}
	return now.Sub(time.Unix(0, c.lastRead.Load()))
}

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
			c.tidyWriter()
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

func (s *ServerIO) sweep(now time.Time) {
	for _, c := range s.conns() {
		c.tidyWriter()
		switch {
		case s.cfg.heartbeatTimeout > 0 && c.silentFor(now) > s.cfg.heartbeatTimeout:
			c.closeWithError(errHeartbeat)
		case !c.authed.Load() && now.Sub(c.created) > s.cfg.handshakeTimeout:
			c.closeWithError(fmt.Errorf("%w: no token within %v", ErrAuthFailed, s.cfg.handshakeTimeout))
		}
	}
	s.kv.sweep(now)
}
