package cluster

import (
	"errors"
	"net"
	"sync"
	"time"
)

// The node keeps one banio listener for its whole life, and every role (a leadership
// with its master, or a follower spell) has its own banio server: dispatch.OpenMaster
// installs the master's handlers on the server's connections, and a role change must
// close every connection so that workers and callers look for the leader again. The
// accept loop hands each accepted connection to whichever role's server is accepting
// (handoff), so the port never closes: between two roles a connection waits in the
// accept loop, not refused.

// acceptLoop accepts on ln and hands connections over until the node closes.
func (n *Node) acceptLoop() {
	defer n.wg.Done()
	var pause time.Duration
	for {
		c, err := n.cfg.Listener.Accept()
		if err != nil {
			select {
			case <-n.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			n.log.Warn("cluster: accept failed, retrying", "err", err, "pause", pause)
			select {
			case <-time.After(pause):
			case <-n.done:
				return
			}
			continue
		}
		pause = 0
		select {
		case n.conns <- c:
		case <-n.done:
			_ = c.Close()
			return
		}
	}
}

// handoff is the net.Listener one role's banio server serves: it accepts what the
// node's accept loop hands over, until Close.
type handoff struct {
	conns  <-chan net.Conn
	addr   net.Addr
	closed chan struct{}
	once   sync.Once
}

func newHandoff(conns <-chan net.Conn, addr net.Addr) *handoff {
	return &handoff{conns: conns, addr: addr, closed: make(chan struct{})}
}

// Accept returns the next connection handed over, or net.ErrClosed after Close.
func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; it does not close the node's listener.
func (h *handoff) Close() error {
	h.once.Do(func() { close(h.closed) })
	return nil
}

// Addr is the node's listener's address.
func (h *handoff) Addr() net.Addr { return h.addr }
