package banio

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Admission: before a connection accepted by Serve costs anything (a BanConn, its
// buffers, a read loop), the server checks its connection limits and the
// authentication throttle. A refused peer gets one welcome frame that says why (a
// banfleet client reports it; a banbot client logs an unknown action) and is closed.

// Refusal codes in a welcome's "code" field.
const (
	refuseAuth      = "auth"       // wrong token: the client gives up (ErrAuthFailed)
	refuseConnLimit = "conn_limit" // too many connections: the client retries later (ErrRefused)
	refuseThrottled = "throttled"  // too many failed authentications from this host (ErrRefused)
)

// refuseWriteTimeout bounds the write of a refusal: it must not hold a descriptor.
const refuseWriteTimeout = time.Second

// fdReserve is how many file descriptors the connection cap leaves for everything else
// (listeners, the status server, files): at the cap, /healthz still answers.
func fdReserve(limit int) int { return max(64, limit/8) }

// connCap is the total connection cap in force: the configured one, lowered to fit the
// process's file descriptor limit.
func connCap(configured int) int {
	if fds := fdLimit(); fds > 0 {
		return max(1, min(configured, fds-fdReserve(fds)))
	}
	return configured
}

// hostOf is the host part of a peer's address, the unit of per-address limits.
func hostOf(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	return hostOfString(addr.String())
}

func hostOfString(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// admit reserves a place for a connection from host, or says why there is none.
func (s *ServerIO) admit(host string) (code, reason string) {
	if wait := s.throttle.barred(host, time.Now()); wait > 0 {
		return refuseThrottled, fmt.Sprintf("too many failed authentications from %s: retry in %v", host, wait.Round(time.Millisecond))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admitted >= s.maxConns {
		return refuseConnLimit, fmt.Sprintf("the server is at its connection limit (%d); retry later or raise it (WithMaxConns, -max-conns)", s.maxConns)
	}
	if s.perHost[host] >= s.cfg.maxConnsPerHost {
		return refuseConnLimit, fmt.Sprintf("too many connections from %s (limit %d per address; WithMaxConns, -max-conns-per-addr)", host, s.cfg.maxConnsPerHost)
	}
	s.admitted++
	s.perHost[host]++
	return "", ""
}

// releaseLocked gives back the place admit reserved. s.mu must be held.
func (s *ServerIO) releaseLocked(host string) {
	s.admitted--
	if s.perHost[host] <= 1 {
		delete(s.perHost, host)
	} else {
		s.perHost[host]--
	}
}

// refuse tells a peer why it was not admitted and closes its connection.
func (s *ServerIO) refuse(nc net.Conn, host, code, reason string) {
	s.refused.Add(1)
	s.refuseLog.log(s.log, slog.LevelWarn, "banio: connection refused", "remote", host, "code", code, "reason", reason)
	data, _ := json.Marshal(welcomeMsg{V: helloVersion, Error: reason, Code: code})
	frame, err := encodeFrameWith(nil, &s.cfg, actionWelcome, data, nil, true, false, wireZlib)
	if err == nil {
		_ = nc.SetDeadline(time.Now().Add(refuseWriteTimeout))
		_, _ = nc.Write(frame)
	}
	_ = nc.Close()
}

// Refused counts connections refused by the connection limits or the authentication
// throttle.
func (s *ServerIO) Refused() uint64 { return s.refused.Load() }

// authFailed records a failed authentication on c: its host is barred for a while
// (authThrottle), and the server logs it at most once per interval.
func (s *ServerIO) authFailed(c *BanConn, what string, args ...any) {
	host := c.addrKey
	if host == "" {
		host = hostOfString(c.remote)
	}
	penalty := s.throttle.fail(host, time.Now())
	s.authLog.log(s.log, slog.LevelWarn, "banio: authentication failed, closing", append(args, "what", what, "remote", c.remote, "barred_for", penalty)...)
}
