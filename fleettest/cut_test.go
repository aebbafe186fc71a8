package fleettest

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// TestCutListener: the listener forgets the connections closed meanwhile (it keeps no
// more than about twice those open), and cutAll resets the open ones, so that nothing
// queued behind the cut reaches the peer, and closes the listener.
func TestCutListener(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &cutListener{Listener: ln}
	accepted := make(chan net.Conn)
	go func() {
		defer close(accepted)
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- nc
		}
	}()
	dial := func() (peer, ours net.Conn) {
		t.Helper()
		peer, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = peer.Close() })
		select {
		case ours = <-accepted:
		case <-time.After(5 * time.Second):
			t.Fatal("no connection accepted")
		}
		return peer, ours
	}
	for range 200 {
		_, ours := dial()
		_ = ours.Close() // closed by its server, as banio closes a finished connection
	}
	peer, _ := dial()
	l.mu.Lock()
	kept := len(l.conns)
	l.mu.Unlock()
	if kept > 64 {
		t.Fatalf("%d connections kept with one open", kept)
	}

	l.cutAll()
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := peer.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read on a cut connection: %v, want a reset (nothing sent behind it)", err)
	}
	<-accepted // the accept loop ends: the listener is closed
}
