package fleettest

import (
	"net"
	"slices"
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

	mu      sync.Mutex
	conns   []net.Conn // the connections accepted since the master started, some closed
	pruneAt int        // len(conns) at which the closed ones are dropped (0: 64)
	cut     bool
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
	if len(l.conns) >= max(l.pruneAt, 64) {
		// A master that peers keep reconnecting to would otherwise keep every
		// socket it ever accepted.
		l.conns = slices.DeleteFunc(l.conns, closed)
		l.pruneAt = 2 * len(l.conns)
	}
	l.conns = append(l.conns, nc)
	return nc, nil
}

// closed reports whether nc is a TCP socket closed already (others are kept).
func closed(nc net.Conn) bool {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	return err != nil || rc.Control(func(uintptr) {}) != nil
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
