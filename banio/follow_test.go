package banio

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// Following the leader of a cluster: a follower's ServerIO answers not_leader with the
// leader's address, and a ClientIO given one or several addresses ends up at the leader.

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// startNoted is startServer whose connections also send every "note" message's data
// to notes.
func startNoted(t *testing.T) (srv *ServerIO, addr string, conns chan *BanConn, notes chan string) {
	t.Helper()
	srv = newServer()
	conns, notes = make(chan *BanConn, 64), make(chan string, 16)
	srv.InitConn = func(c *BanConn) {
		echoHandler(c)
		c.Listen("note", func(m *IOMsgRaw) { notes <- string(m.Data) })
		select {
		case conns <- c:
		default:
		}
	}
	return srv, serve(t, srv), conns, notes
}

func TestFollowerRedirectsClientToLeader(t *testing.T) {
	leakcheck.Check(t)
	leader, leaderAddr, _ := startServer(t)
	follower, followerAddr, _ := startServer(t)
	follower.SetNotLeader(leaderAddr)

	t.Run("list", func(t *testing.T) {
		// The follower first: the handshake learns where the leader is, and the client
		// dials it next, within NewClientIO.
		c := dialClient(t, followerAddr+","+leaderAddr)
		if got := c.CurrentAddr(); got != leaderAddr {
			t.Fatalf("CurrentAddr = %q, want the leader %q", got, leaderAddr)
		}
		if got := c.Addrs(); len(got) != 2 || got[0] != followerAddr || got[1] != leaderAddr {
			t.Fatalf("Addrs = %q", got)
		}
		mustRoundTrip(t, c, "to the leader")
	})

	t.Run("single address", func(t *testing.T) {
		// Given only the follower, with no token: nothing waits for the welcome, so the
		// not_leader comes to the running client, which reconnects to the leader at once
		// (no backoff: the policy here would wait an hour).
		before := follower.Redirected()
		c := newClient(t, followerAddr, WithReconnectBackoff(stopAfter(0)))
		reinit := make(chan struct{}, 4)
		c.ReInitConn = func() { reinit <- struct{}{} }
		run(t, c)
		recv(t, reinit, 10*time.Second, "the reconnect to the leader")
		if got := c.CurrentAddr(); got != leaderAddr {
			t.Fatalf("CurrentAddr = %q, want the leader %q", got, leaderAddr)
		}
		mustRoundTrip(t, c, "redirected")
		if got := follower.Redirected() - before; got != 1 {
			t.Fatalf("follower redirected %d connections, want 1", got)
		}
	})

	t.Run("token", func(t *testing.T) {
		leader, leaderAddr, _ := startServer(t, WithToken("s3cret"))
		follower, followerAddr, _ := startServer(t, WithToken("s3cret"))
		follower.SetNotLeader(leaderAddr)
		c := dialClient(t, followerAddr, WithToken("s3cret"))
		if got := c.CurrentAddr(); got != leaderAddr {
			t.Fatalf("CurrentAddr = %q, want the leader %q", got, leaderAddr)
		}
		mustRoundTrip(t, c, "with a token")
		// The leader is told only to a peer that authenticated.
		_, err := NewClientIO(followerAddr, WithToken("wrong"))
		if !errors.Is(err, ErrAuthFailed) || errors.Is(err, ErrNotLeader) {
			t.Fatalf("wrong token at a follower: %v, want ErrAuthFailed", err)
		}
		_ = leader
	})
	_ = leader
}

func TestFollowerAnswersRawPeer(t *testing.T) {
	leakcheck.Check(t)
	for _, leader := range []string{"10.0.0.1:6789", ""} {
		srv, addr, _ := startServer(t)
		srv.SetNotLeader(leader)
		// A banbot peer never says hello: its first frame is answered the same way.
		for _, first := range []string{actionHello, "ping"} {
			p := dialRaw(t, addr, nil)
			p.send(first, []byte(`{"v":1}`), true)
			m := p.expect(actionWelcome)
			var w map[string]any
			if err := json.Unmarshal(m.Data, &w); err != nil {
				t.Fatal(err)
			}
			if w["code"] != refuseNotLeader || w["leader"] != leader {
				t.Fatalf("welcome %s after %s, want code not_leader and leader %q", m.Data, first, leader)
			}
			if _, ok := w["leader"]; !ok {
				t.Fatalf("welcome %s has no leader field", m.Data)
			}
			p.expectClosed(10 * time.Second)
		}
		if got := srv.Redirected(); got != 2 {
			t.Fatalf("Redirected = %d, want 2", got)
		}
		// SetLeader: served again.
		srv.SetLeader()
		mustRoundTrip(t, dialClient(t, addr), "leader again")
		p := dialRaw(t, addr, nil)
		p.ping(1)
	}
}

func TestFollowerKeepsExistingConnections(t *testing.T) {
	leakcheck.Check(t)
	srv, addr, _ := startServer(t)
	c := dialClient(t, addr)
	mustRoundTrip(t, c, "before")
	srv.SetNotLeader("elsewhere:1")
	mustRoundTrip(t, c, "after SetNotLeader")
}

func TestClientSkipsDeadAddress(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	dead := deadAddr(t)
	c := newClient(t, dead+", "+addr, WithReconnectBackoff(stopAfter(0)))
	reinit := make(chan struct{}, 4)
	c.ReInitConn = func() { reinit <- struct{}{} }
	run(t, c)
	if got := c.CurrentAddr(); got != addr {
		t.Fatalf("CurrentAddr = %q, want %q", got, addr)
	}
	mustRoundTrip(t, c, "second address")
	// A reconnect goes round again, the address connected last first.
	recv(t, conns, time.Second, "the server's connection").Close()
	recv(t, reinit, 10*time.Second, "the reconnect")
	mustRoundTrip(t, c, "after the reconnect")
}

func TestFollowersPointingAtEachOtherDoNotSpin(t *testing.T) {
	leakcheck.Check(t)
	for _, confused := range []bool{true, false} {
		a, aAddr, _ := startServer(t)
		b, bAddr, _ := startServer(t)
		leaderOf := func(other string) string {
			if confused {
				return other
			}
			return "" // an election under way
		}
		redirects := func() uint64 { return a.Redirected() + b.Redirected() }
		a.SetNotLeader(leaderOf(bAddr))
		b.SetNotLeader(leaderOf(aAddr))

		// Connecting: one round, each address once (a's leader is b, which is next
		// anyway), then the refusal.
		_, err := NewClientIO(aAddr+","+bAddr, WithHandshakeTimeout(5*time.Second))
		var nl *NotLeaderError
		if !errors.Is(err, ErrNotLeader) || !errors.Is(err, ErrRefused) || !errors.As(err, &nl) {
			t.Fatalf("confused=%v: NewClientIO = %v, want ErrNotLeader", confused, err)
		}
		if got := redirects(); got != 2 {
			t.Fatalf("confused=%v: %d redirects connecting, want 2 (one per address)", confused, got)
		}
		// A running client given a alone hears not_leader from it, hops to b (if a
		// names it), and goes round once per try of its policy, then gives up.
		c := newClient(t, aAddr, WithReconnectBackoff(stopAfter(1)))
		t.Cleanup(func() { _ = c.Close() })
		ran := make(chan error, 1)
		go func() { ran <- c.RunForever() }()
		if err := recv(t, ran, 10*time.Second, "RunForever giving up"); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("confused=%v: RunForever(one address) = %v, want ErrNotLeader", confused, err)
		}
		want := uint64(2 + 1 + 1 + 1) // connecting; the answer; two rounds of one
		if confused {
			want = 2 + 1 + 2 + 2 // connecting; the answer; two rounds of a and b
		}
		if got := redirects(); got != want {
			t.Fatalf("confused=%v: %d redirects after a single-address client, want %d", confused, got, want)
		}

		// Reconnecting: a client of a, which stops leading (its master closes the
		// connection), goes round once per try of its policy, then gives up.
		a.SetLeader()
		c = newClient(t, aAddr+","+bAddr, WithReconnectBackoff(stopAfter(2)))
		t.Cleanup(func() { _ = c.Close() })
		done := make(chan error, 1)
		go func() { done <- c.RunForever() }()
		mustRoundTrip(t, c, "a leads")
		a.SetNotLeader(leaderOf(bAddr))
		before := redirects()
		for _, conn := range a.Conns() { // the client's, as its master closes it
			_ = conn.Close()
		}
		err = recv(t, done, 10*time.Second, "RunForever giving up")
		if !errors.Is(err, ErrNotLeader) {
			t.Fatalf("confused=%v: RunForever = %v, want ErrNotLeader", confused, err)
		}
		if got := redirects() - before; got != 6 {
			t.Fatalf("confused=%v: %d redirects over 3 rounds, want 6", confused, got)
		}
	}
}

// TestClientQueueWaitsForLeader: what is written while the client reconnects reaches
// the leader it is redirected to, none of it the follower that refused it.
func TestClientQueueWaitsForLeader(t *testing.T) {
	leakcheck.Check(t)
	a, aAddr, aConns, aNotes := startNoted(t)
	_, bAddr, _, bNotes := startNoted(t)

	// The test holds the client's dials to a until it has written its note.
	var mu sync.Mutex
	var gate chan struct{}
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		g := gate
		mu.Unlock()
		if g != nil && addr == aAddr {
			<-g
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	c := newClient(t, aAddr+","+bAddr, WithDialer(dialer), constantBackoff(time.Millisecond))
	lost := make(chan struct{}, 1)
	c.OnConnLost = func(error) { lost <- struct{}{} }
	run(t, c)
	mustRoundTrip(t, c, "a leads")

	a.SetNotLeader(bAddr)
	mu.Lock()
	gate = make(chan struct{})
	mu.Unlock()
	recv(t, aConns, time.Second, "a's connection").Close()
	recv(t, lost, 10*time.Second, "the connection lost")
	if err := c.WriteMsg(&IOMsg{Action: "note", Data: "queued"}); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if got := recv(t, bNotes, 10*time.Second, "the note at the leader"); got != "queued" {
		t.Fatalf("leader got note %q", got)
	}
	if c.CurrentAddr() != bAddr {
		t.Fatalf("CurrentAddr = %q, want %q", c.CurrentAddr(), bAddr)
	}
	mustRoundTrip(t, c, "b leads")
	select {
	case n := <-aNotes:
		t.Fatalf("the follower got note %q", n)
	default:
	}
	if a.Redirected() != 1 {
		t.Fatalf("a redirected %d connections, want 1", a.Redirected())
	}
}

func TestNotLeaderErrorText(t *testing.T) {
	e := &NotLeaderError{Addr: "a:1", Leader: "b:2"}
	if !strings.Contains(e.Error(), "a:1") || !strings.Contains(e.Error(), "b:2") {
		t.Fatalf("%q", e.Error())
	}
	if !errors.Is(e, ErrNotLeader) || !errors.Is(e, ErrRefused) {
		t.Fatal("NotLeaderError is not ErrNotLeader and ErrRefused")
	}
	if got := splitAddrs(" a:1, ,b:2,a:1 "); len(got) != 2 || got[0] != "a:1" || got[1] != "b:2" {
		t.Fatalf("splitAddrs = %q", got)
	}
}
