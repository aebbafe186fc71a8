package banio

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/faultproxy"
	"github.com/banfleet/banfleet/internal/leakcheck"
)

// TestReconnect: a client behind a proxy loses its link. Its pending wait fails at
// once with ErrConnClosed; it reconnects by itself, restores its subscription, calls
// ReInitConn, and round trips and broadcasts work again. Messages written while it
// cannot connect are queued and delivered after the reconnect.
func TestReconnect(t *testing.T) {
	leakcheck.Check(t)
	srv := newServer()
	queued := make(chan string, 1)
	conns := make(chan *BanConn, 4)
	srv.InitConn = func(bc *BanConn) {
		echoHandler(bc)
		bc.Listen("queued", func(m *IOMsgRaw) { queued <- string(m.Data) })
		conns <- bc
	}
	proxy, err := faultproxy.New(serve(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })

	var down atomic.Bool // while set, dialing fails outright
	dialer := func(ctx context.Context, a string) (net.Conn, error) {
		if down.Load() {
			return nil, errors.New("test: network down")
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", a)
	}
	c := newClient(t, proxy.Addr(), WithDialer(dialer), constantBackoff(10*time.Millisecond))
	reinit := make(chan struct{}, 16)
	c.ReInitConn = func() { reinit <- struct{}{} }
	run(t, c)
	recv(t, conns, 5*time.Second, "first server conn")

	got := make(chan string, 16)
	c.Listen("topic", func(m *IOMsgRaw) { got <- string(m.Data) })
	if err := c.Subscribe("topic"); err != nil {
		t.Fatal(err)
	}
	mustRoundTrip(t, c, "barrier")
	_ = srv.Broadcast(&IOMsg{Action: "topic", Data: "before"})
	if g := recv(t, got, 5*time.Second, "broadcast before the cut"); g != "before" {
		t.Fatalf("got %q", g)
	}

	k := c.SetWait("", 1)
	if err := c.WriteMsg(&IOMsg{Action: "unanswered"}); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { _, err := c.WaitResult(context.Background(), k, time.Minute); waitErr <- err }()
	mustRoundTrip(t, c, "the wait is pending")

	down.Store(true)
	start := time.Now()
	proxy.Cut()
	if err := recv(t, waitErr, 5*time.Second, "pending wait to fail"); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("pending wait: %v, want ErrConnClosed", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("pending wait failed after %v", d)
	}

	// Written while no connection can be made: queued, not failed.
	if err := c.WriteMsg(&IOMsg{Action: "queued", Data: "written while down"}); err != nil {
		t.Fatalf("WriteMsg while reconnecting: %v", err)
	}
	down.Store(false)

	recv(t, reinit, 10*time.Second, "ReInitConn")
	sc := recv(t, conns, 5*time.Second, "new server conn")
	if q := recv(t, queued, 5*time.Second, "queued message"); q != "written while down" {
		t.Fatalf("queued message %q", q)
	}
	mustRoundTrip(t, c, "after the reconnect")
	if _, ok := sc.GetData("topic"); !ok {
		t.Fatal("subscription not restored on the new connection")
	}
	_ = srv.Broadcast(&IOMsg{Action: "topic", Data: "after"})
	if g := recv(t, got, 5*time.Second, "broadcast after the reconnect"); g != "after" {
		t.Fatalf("got %q", g)
	}
}

// TestClientCloseIsFinal: Close stops a client for good; it does not reconnect (banbot's
// does).
func TestClientCloseIsFinal(t *testing.T) {
	leakcheck.Check(t)
	_, addr, _ := startServer(t)
	proxy, err := faultproxy.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	c := newClient(t, proxy.Addr(), constantBackoff(time.Millisecond))
	done := make(chan error, 1)
	go func() { done <- c.RunForever() }()
	mustRoundTrip(t, c, "up")
	_ = c.Close()
	if err := recv(t, done, 5*time.Second, "RunForever"); err != nil {
		t.Fatalf("RunForever after Close: %v", err)
	}
	if n := proxy.Accepted(); n != 1 {
		t.Fatalf("proxy saw %d connections, want 1", n)
	}
	if _, err := roundTrip(c, []byte("x"), time.Second); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("round trip after Close: %v", err)
	}
}

// TestReconnectGivesUp: a backoff policy that stops ends RunForever with an error.
func TestReconnectGivesUp(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	proxy, err := faultproxy.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	c := newClient(t, proxy.Addr(), WithReconnectBackoff(stopAfter(2)))
	done := make(chan error, 1)
	go func() { done <- c.RunForever() }()
	mustRoundTrip(t, c, "up")
	sc := recv(t, conns, 5*time.Second, "server conn")
	_ = proxy.Close() // nothing listens any more
	_ = sc.Close()
	if err := recv(t, done, 10*time.Second, "RunForever to give up"); err == nil {
		t.Fatal("RunForever returned nil after giving up")
	}
	if !c.IsClosed() {
		t.Fatal("client not closed after giving up")
	}
}

// TestServerHeartbeat: a server with a heartbeat timeout closes a connection that sends
// nothing, and keeps a pinging client.
func TestServerHeartbeat(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t, WithHeartbeat(20*time.Millisecond, 150*time.Millisecond))
	c := dialClient(t, addr, WithHeartbeat(20*time.Millisecond, 150*time.Millisecond))
	csc := recv(t, conns, 5*time.Second, "client's server conn")
	start := time.Now() // before the connection exists: its silence starts later
	p := dialRaw(t, addr, nil)
	sc := recv(t, conns, 5*time.Second, "raw server conn")
	p.expectClosed(5 * time.Second)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("closed after %v, before the timeout", d)
	}
	if !errors.Is(sc.Err(), ErrTimeout) {
		t.Fatalf("silent conn closed with %v, want ErrTimeout", sc.Err())
	}
	if csc.IsClosed() {
		t.Fatal("the pinging client was closed too")
	}
	mustRoundTrip(t, c, "still up")
}

// TestPongsPassABusyHandler: pings are answered on the read loop, so a handler that
// holds the server's handler goroutine for longer than the client's heartbeat timeout
// does not make the client drop a live server.
func TestPongsPassABusyHandler(t *testing.T) {
	leakcheck.Check(t)
	srv := newServer(WithHeartbeat(20*time.Millisecond, 150*time.Millisecond))
	started, release := make(chan struct{}, 1), make(chan struct{})
	srv.InitConn = func(c *BanConn) {
		c.Listen("block", func(*IOMsgRaw) {
			started <- struct{}{}
			<-release
		})
	}
	addr := serve(t, srv)
	c := newClient(t, addr, WithHeartbeat(20*time.Millisecond, 150*time.Millisecond))
	reconnects := make(chan struct{}, 16)
	c.ReInitConn = func() { reconnects <- struct{}{} }
	run(t, c)
	defer close(release)
	if err := c.WriteMsg(&IOMsg{Action: "block"}); err != nil {
		t.Fatal(err)
	}
	recv(t, started, 5*time.Second, "the blocking handler")
	socket := c.currentSocket()
	// Every pong is a frame read; while the handler blocks, nothing else is sent. Ten
	// of them span more than the heartbeat timeout.
	from := c.reads.Load()
	waitUntil(t, 5*time.Second, "pongs while the handler blocks", func() bool { return c.reads.Load() >= from+10 })
	if c.currentSocket() != socket || len(reconnects) > 0 {
		t.Fatal("the client reconnected to a live server whose handler was busy")
	}
}

// TestClientHeartbeat: a client whose server accepts but never answers notices the
// silence, drops the socket and reconnects.
func TestClientHeartbeat(t *testing.T) {
	leakcheck.Check(t)
	rs := startRawServer(t, nil, true)
	start := time.Now() // before the client exists: its silence clock starts later
	c := newClient(t, rs.addr(), WithHeartbeat(20*time.Millisecond, 100*time.Millisecond), constantBackoff(10*time.Millisecond))
	reinit := make(chan struct{}, 16)
	c.ReInitConn = func() { reinit <- struct{}{} }
	run(t, c)
	first := recv(t, rs.conns, 5*time.Second, "first connection")
	recv(t, rs.conns, 10*time.Second, "a reconnect")
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("reconnected after %v, before the timeout", d)
	}
	recv(t, reinit, 5*time.Second, "ReInitConn")
	// The client closed the silent socket.
	_ = first.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := first.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("client kept the silent socket open")
			}
			break
		}
	}
	var pings int
	for len(rs.frames) > 0 {
		if m := <-rs.frames; m.Action == "ping" {
			pings++
		}
	}
	if pings == 0 {
		t.Fatal("the client never pinged")
	}
}

// zlibOf compresses b with the standard library at the best ratio.
func zlibOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// TestBadInput sends bad input to a ServerIO over raw sockets, one connection per
// case, while a healthy client keeps doing round trips that must all succeed. Framing
// errors close the one connection; decoding errors skip the frame and keep it.
func TestBadInput(t *testing.T) {
	leakcheck.Check(t)
	logOpt, logs := captureLogs()
	_, addr, conns := startServer(t, WithAESKey(testKey128), WithMaxInflatedSize(1<<20), logOpt)
	healthy := dialClient(t, addr, WithAESKey(testKey128))
	recv(t, conns, 5*time.Second, "healthy conn")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var trips atomic.Int64
	var tripErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			want := fmt.Sprint("healthy ", i)
			got, err := roundTrip(healthy, []byte(want), 10*time.Second)
			if err == nil && string(got) != want {
				err = fmt.Errorf("got %q, want %q", got, want)
			}
			if err != nil {
				tripErr.Store(err)
				return
			}
			trips.Add(1)
		}
	}()

	key := refKey(t, testKey128)
	frame := func(action string, wireData []byte, noEncrypt bool) []byte {
		return appendFrame(nil, action, wireData, noEncrypt)
	}
	lengthHeader := func(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }
	bomb := zlibOf(t, make([]byte, 16<<20))
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}

	cases := []struct {
		name   string
		input  func(p *rawPeer)
		closed error  // nil: the connection must survive (proved by a ping)
		logged string // must appear in the server's log
	}{
		{"garbage bytes", func(p *rawPeer) { p.write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) }, ErrFrameTooLarge, ""},
		{"absurd length", func(p *rawPeer) { p.write([]byte{0xff, 0xff, 0xff, 0xff}) }, ErrFrameTooLarge, "frame too large"},
		{"undecodable body", func(p *rawPeer) {
			p.write(append(lengthHeader(16), "0123456789abcdef"...))
		}, nil, "dropped undecodable message"},
		{"empty frame", func(p *rawPeer) { p.write(lengthHeader(0)) }, nil, ""},
		{"valid gob, not zlib", func(p *rawPeer) { p.write(frame("echo", []byte("not zlib at all"), true)) }, nil, "zlib"},
		{"fast tag without handshake", func(p *rawPeer) { p.write(frame("echo", []byte{tagRaw, 'x'}, true)) }, nil, ""},
		{"wrong AES key", func(p *rawPeer) {
			p.write(refEncodeFrame(t, "echo", []byte("k|x"), false, refKey(t, testKey256)))
		}, nil, "decrypt"},
		{"short ciphertext", func(p *rawPeer) { p.write(frame("echo", []byte{1, 2, 3}, false)) }, nil, "too short"},
		{"unknown action", func(p *rawPeer) { p.send("no-such-action", []byte("x"), true) }, nil, "no handler"},
		{"zlib bomb", func(p *rawPeer) { p.write(frame("echo", bomb, true)) }, ErrInflatedTooLarge, ""},
		// Alone: a connection logs its first bad message, then at most one per
		// interval, and the hello below is handled on the read loop, ahead of the
		// handler goroutine's subscribe.
		{"bad subscribe payload", func(p *rawPeer) {
			p.send("subscribe", []byte(`{"not":"an array"}`), true)
		}, nil, "bad subscribe payload"},
		{"bad built-in payloads", func(p *rawPeer) {
			p.send("subscribe", []byte(`{"not":"an array"}`), true)
			p.send("ping", []byte("1.5"), true)
			p.send("onSetVal", []byte(`[1,2]`), true)
			p.send("onGetVal", nil, true)
			p.send(actionLock, []byte(`{}`), true)
			p.send(actionUnlock, []byte(`nope`), true)
			p.send(actionHello, []byte(`{"v":`), true)
			p.send(actionWelcome, []byte(`{}`), true)
			p.send(resPrefix+"nobody", []byte(`x`), true)
		}, nil, ""},
		{"truncated frame then close", func(p *rawPeer) {
			p.write(append(lengthHeader(100), "only ten b"...))
			_ = p.nc.(*net.TCPConn).CloseWrite()
		}, errAnyClose, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := dialRaw(t, addr, key)
			sc := recv(t, conns, 5*time.Second, "server conn")
			// A peer that has sent something valid has its bad input logged once per
			// connection; a stranger's, once an interval for the whole server.
			p.ping(9)
			tc.input(p)
			if tc.closed == nil {
				p.ping(10)
				if sc.IsClosed() {
					t.Fatalf("connection closed: %v", sc.Err())
				}
			} else {
				p.expectClosed(5 * time.Second)
				<-sc.Done()
				if tc.closed != errAnyClose && !errors.Is(sc.Err(), tc.closed) {
					t.Fatalf("closed with %v, want %v", sc.Err(), tc.closed)
				}
			}
			if tc.logged != "" {
				waitUntil(t, 5*time.Second, "log line "+tc.logged, func() bool { return logs.contains(tc.logged) })
			}
		})
	}
	close(stop)
	wg.Wait()
	if err, _ := tripErr.Load().(error); err != nil {
		t.Fatalf("healthy client's round trip failed: %v", err)
	}
	if trips.Load() == 0 {
		t.Fatal("the healthy client did no round trip")
	}
	t.Logf("%d healthy round trips during the bad input", trips.Load())
}

// errAnyClose marks a case where the connection must close, whatever the error.
var errAnyClose = errors.New("any close")

// TestNoGoroutineOutlivesClose: a server with many clients, handlers, broadcasts and
// waits in flight is closed; every goroutine ends (leakcheck), and clients' waits fail.
func TestNoGoroutineOutlivesClose(t *testing.T) {
	leakcheck.Check(t)
	srv := newServer(WithHeartbeat(10*time.Millisecond, time.Second))
	srv.InitConn = echoHandler
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var clients []*ClientIO
	var done []chan error
	for range 5 {
		c, err := NewClientIO(ln.Addr().String(), WithReconnectBackoff(stopAfter(0)), WithHeartbeat(10*time.Millisecond, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		d := make(chan error, 1)
		go func() { d <- c.RunForever() }()
		_ = c.Subscribe("t")
		mustRoundTrip(t, c, "up")
		clients, done = append(clients, c), append(done, d)
	}
	waits := make(chan error, len(clients))
	for _, c := range clients {
		k := c.SetWait("", 1)
		go func() { _, err := c.WaitResult(context.Background(), k, time.Minute); waits <- err }()
		_ = srv.Broadcast(&IOMsg{Action: "t", Data: "x"})
	}
	_ = srv.Close()
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	for range clients {
		if err := recv(t, waits, 5*time.Second, "waits to fail"); !errors.Is(err, ErrConnClosed) {
			t.Fatalf("wait: %v", err)
		}
	}
	for i, c := range clients {
		recv(t, done[i], 10*time.Second, "client to give up")
		_ = c.Close()
	}
	if n := len(srv.Conns()); n != 0 {
		t.Fatalf("%d connections left after Close", n)
	}
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}

// TestLateSocketLossSparesTheNextSocket: a write that finds a client's socket dead
// closes it, which wakes the read loop, and then fails the socket's waits. If it is
// slow to fail them, the read loop must not reconnect meanwhile: a wait registered for
// the new socket would fail with the old one, and the request behind it would hang on
// a connection that had come back.
func TestLateSocketLossSparesTheNextSocket(t *testing.T) {
	leakcheck.Check(t)
	srv := newServer()
	srv.InitConn = echoHandler
	addr := serve(t, srv)
	var failNext atomic.Bool
	dialer := func(ctx context.Context, a string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			return nil, err
		}
		return &failingConn{Conn: nc, failNext: &failNext}, nil
	}
	c := newClient(t, addr, WithDialer(dialer), constantBackoff(10*time.Millisecond))
	t.Cleanup(func() { testHookSocketClosed = nil }) // registered before run's: after the client is closed
	type outcome struct {
		data []byte
		err  error
	}
	reinit := make(chan string, 4)
	outcomes := make(chan outcome, 4)
	c.ReInitConn = func() { // a wait for the new socket, as soon as it is up
		key, err := c.SetWaitFunc("", func(data []byte, err error) { outcomes <- outcome{data, err} })
		if err != nil {
			outcomes <- outcome{nil, err}
			return
		}
		reinit <- key
	}
	run(t, c)
	mustRoundTrip(t, c, "before the loss")

	// The write's loss step stalls between closing the socket and failing its waits:
	// until the client has reconnected, or for a while if it cannot (the fix).
	forwarded := make(chan string, 1)
	stalled := make(chan struct{})
	var once sync.Once
	testHookSocketClosed = func() {
		once.Do(func() {
			defer close(stalled)
			select {
			case key := <-reinit:
				forwarded <- key
			case <-time.After(300 * time.Millisecond):
			}
		})
	}
	failNext.Store(true)
	if err := c.WriteMsg(&IOMsg{Action: "unanswered"}); err != nil {
		t.Fatal(err)
	}
	recv(t, stalled, 10*time.Second, "the loss step to stall")
	var key string
	select {
	case key = <-forwarded: // reconnected during the stall
	case key = <-reinit: // reconnected after it, once the old socket's waits had failed
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not reconnect")
	}
	// A round trip registered after the reconnect: once it is back, the old socket's
	// waits have failed, whenever that happened (or it fails itself, registered before).
	mustRoundTrip(t, c, "after the loss")
	if err := c.WriteMsg(&IOMsg{Action: "echo", Data: key + "|after the loss"}); err != nil {
		t.Fatal(err)
	}
	got := recv(t, outcomes, 10*time.Second, "the new socket's wait to end")
	if got.err != nil || string(got.data) != "after the loss" {
		t.Fatalf("the wait registered for the new socket ended with %q, %v; want the echo", got.data, got.err)
	}
}

// failingConn fails its next write once failNext is set. The socket stays open, so
// that the writer, not the read loop, is the first to find it gone.
type failingConn struct {
	net.Conn
	failNext *atomic.Bool
}

func (c *failingConn) Write(b []byte) (int, error) {
	if c.failNext.CompareAndSwap(true, false) {
		return 0, errors.New("test: the socket is gone")
	}
	return c.Conn.Write(b)
}
