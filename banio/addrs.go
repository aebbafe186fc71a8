package banio

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Following the leader, client side. A ClientIO may be given several addresses
// ("a:1,b:2,c:3", the masters of a cluster): each connect is a round over them, in
// order, from the one it was connected to last. A server that answers not_leader names
// the leader, which is dialed next: at most one such hop per address per round, so
// that followers pointing at each other (or at a leader that is gone) cost one round,
// after which the reconnect backoff applies as to any failed round. A hop is part of
// its round and costs no backoff.
//
// With several addresses (or a token, or once any server said not_leader) the client
// waits for the welcome on a new socket before it attaches it: nothing queued is
// written to a server that is about to refuse the connection, and ReInitConn runs only
// once a server took it. With one address and no token it does as banbot's client does:
// nothing waits for an answer a banbot server never gives.

// splitAddrs parses a comma-separated address list; blanks around the commas and
// repeated addresses are dropped. A string with no address in it stays one, for dial
// to report.
func splitAddrs(s string) []string {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return []string{s}
	}
	return out
}

// Addrs returns the addresses the client dials in turn: Addr split at its commas.
func (c *ClientIO) Addrs() []string { return slices.Clone(c.addrs) }

// CurrentAddr returns the address of the server the client is connected to, or was
// last while it reconnects: one of Addrs, or the leader a follower named.
func (c *ClientIO) CurrentAddr() string {
	if p := c.current.Load(); p != nil {
		return *p
	}
	return ""
}

// dialErrors are the failures of one round over a client's addresses, in order.
// errors.Is and errors.As look at each.
type dialErrors []error

func (e dialErrors) err() error {
	switch len(e) {
	case 0:
		return nil
	case 1:
		return e[0]
	}
	return e
}

func (e dialErrors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return "banio: no server took the connection: " + strings.Join(parts, "; ")
}

func (e dialErrors) Unwrap() []error { return e }

// connectRound tries each address once, first (a leader just named, or "") first,
// then the one connected last, then Addrs in order, and follows a not_leader answer to
// the leader it names at most once per address. try dials one address (and, if the
// client waits for the welcome, shakes hands). It returns the first socket a server
// took, or every failure. It runs on the reading goroutine.
func (c *ClientIO) connectRound(first string, try func(addr string) (net.Conn, error)) (net.Conn, error) {
	order := make([]string, 0, len(c.addrs)+2)
	if first != "" {
		order = append(order, first)
	}
	if cur := c.CurrentAddr(); cur != "" {
		order = append(order, cur)
	}
	order = append(order, c.addrs...)
	var errs dialErrors
	tried := make(map[string]bool, len(order))
	for _, addr := range order {
		// The address, then at most one leader it names.
		for hop := 0; hop < 2 && !tried[addr]; hop++ {
			tried[addr] = true
			nc, err := try(addr)
			if err == nil {
				c.dialing = addr
				c.current.Store(&addr)
				return nc, nil
			}
			errs = append(errs, err)
			if c.BanConn != nil && c.closing() {
				return nil, errs.err()
			}
			var nl *NotLeaderError
			if !errors.As(err, &nl) || nl.Leader == "" {
				break
			}
			addr = nl.Leader
		}
	}
	return nil, errs.err()
}

// tryAddr is reconnect's try: dial addr, and shake hands first if the client waits for
// the welcome.
func (c *ClientIO) tryAddr(addr string) (net.Conn, error) {
	nc, err := dialAbortable(c.cfg, addr, c.done)
	if err != nil {
		return nil, err
	}
	if !c.prehandshake {
		return nc, nil
	}
	return nc, c.handshakeOn(nc, addr)
}

// dialAbortable dials addr within the handshake timeout; closing done aborts it.
func dialAbortable(cfg *config, addr string, done <-chan struct{}) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.handshakeTimeout)
	defer cancel()
	if done != nil {
		go func() { // Close aborts a dial in progress
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return dial(ctx, cfg, addr)
}

// handshakeOn makes nc the socket being read and exchanges hello and welcome on it
// before the writer may use it, so that nothing queued goes to a server that refuses
// the connection. On failure nc is closed and forgotten, and the waits pending on the
// client are left alone: nothing was sent for them on nc.
func (c *ClientIO) handshakeOn(nc net.Conn, addr string) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = nc.Close()
		return ErrConnClosed
	}
	if c.nc != nc {
		c.nc, c.br = nc, bufio.NewReaderSize(nc, readBufferSize)
	}
	c.mu.Unlock()
	c.fastSend.Store(false)
	c.peerMaxFrame.Store(0) // the welcome says
	c.lastRead.Store(time.Now().UnixNano())
	select { // an answer left from an earlier socket
	case <-c.handshake:
	default:
	}
	c.dialing, c.handshaking = addr, true
	_ = nc.SetWriteDeadline(time.Now().Add(c.cfg.writeTimeout))
	_, err := nc.Write(c.helloFrame())
	_ = nc.SetWriteDeadline(time.Time{})
	if err == nil {
		err = c.awaitWelcome(nc)
	} else {
		err = fmt.Errorf("banio: hello: %w", err)
	}
	c.handshaking = false
	if err == nil {
		return nil
	}
	c.mu.Lock()
	if c.nc == nc {
		c.nc = nil
	}
	c.mu.Unlock()
	c.out.detach(nc)
	_ = nc.Close()
	var nl *NotLeaderError
	switch {
	case len(c.addrs) == 1, errors.As(err, &nl):
	case errors.Is(err, ErrAuthFailed) && !c.closing():
		// Unanswered, not refused (a refusal closes the client): that server may be
		// hung while another answers, and ErrAuthFailed would make callers give up.
		err = fmt.Errorf("%w: %s did not answer the hello within %v", ErrTimeout, addr, c.cfg.handshakeTimeout)
	default:
		err = fmt.Errorf("banio: %s: %w", addr, err)
	}
	return err
}

// notLeader handles a not_leader welcome (on the reading goroutine): during a
// handshake it is the handshake's answer; on a running connection the socket is
// dropped and the reconnect dials the leader first. Either way the servers are a
// cluster's, which always answer a hello: from now on every socket waits for its
// welcome before it is used.
func (c *ClientIO) notLeader(leader string) {
	c.prehandshake = true
	err := &NotLeaderError{Addr: c.dialing, Leader: leader}
	if !c.handshaking {
		c.redirect = leader
		c.log.Info("banio: the server is not the leader, following it", "addr", c.dialing, "leader", leader)
	}
	c.refused(err)
}

// refused handles a server's refusal (on the reading goroutine): during a handshake it
// is the handshake's answer; a running connection's socket is dropped, and the read
// loop reconnects.
func (c *ClientIO) refused(err error) {
	if c.handshaking {
		c.handshakeRefused(err)
		return
	}
	if nc := c.currentSocket(); nc != nil {
		c.socketFailed(nc, err)
	}
}
