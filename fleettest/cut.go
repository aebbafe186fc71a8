package fleettest

import (
	"net"
	"sync"
)

// cutListener is the master's listener. It keeps the connections it accepts, so that
// StopMaster can close them all at once, abortively, as a crash would, before the
// server's Close: a connection closed by banio's own Close first writes what it had
// queued (within a grace), which a dead master never does. (A durable master killed
// in a test, its store dead first, could otherwise still answer a submission it failed
// to record: "not accepted", where a crashed one answers nothing.)
type cutListener struct {
	net.Listener

	mu    sync.Mutex
	conns []net.Conn // every connection accepted since the master started
	cut   bool
}

// Accept accepts a connection and keeps it; after cut it refuses.
func (l *cutListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		abort(nc)
		return nil, net.ErrClosed
	}
	l.conns = append(l.conns, nc)
	return nc, nil
}

// cutAll closes the listener and every connection it accepted. It may be called again.
func (l *cutListener) cutAll() {
	l.mu.Lock()
	conns := l.conns
	l.conns, l.cut = nil, true
	l.mu.Unlock()
	_ = l.Listener.Close()
	for _, nc := range conns {
		abort(nc)
	}
}

// abort closes nc at once, without sending what its socket still holds (a TCP reset).
func abort(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}
