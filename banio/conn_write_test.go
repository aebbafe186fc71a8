package banio

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// TestConcurrentWriters: many goroutines write through one connection with a small
// write queue (so writers wait for room); every message arrives, and each writer's
// messages arrive in its order.
func TestConcurrentWriters(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr, WithMaxPendingBytes(16<<10))
	sc := recv(t, conns, 5*time.Second, "server conn")
	const writers, each = 16, 150
	last := make(map[int]int)
	done := make(chan struct{})
	var bad []string
	total := 0
	sc.Listen("w", func(m *IOMsgRaw) { // handler goroutine only
		var w, n int
		fmt.Sscanf(string(m.Data), "%d %d", &w, &n)
		if prev, ok := last[w]; ok && n != prev+1 || !ok && n != 0 {
			bad = append(bad, fmt.Sprintf("writer %d: %d after %d", w, n, prev))
		}
		last[w] = n
		if total++; total == writers*each {
			close(done)
		}
	})
	pad := strings.Repeat("p", 3000)
	concurrently(t, writers, func(w int) error {
		for n := range each {
			if err := c.WriteMsg(&IOMsg{Action: "w", Data: fmt.Sprintf("%d %d %s", w, n, pad)}); err != nil {
				return err
			}
		}
		return nil
	})
	recv(t, done, 30*time.Second, "every message")
	if len(bad) > 0 {
		t.Fatalf("order broken: %v", bad[:min(len(bad), 5)])
	}
}

// TestWriteToStuckPeer: when the peer stops reading, WriteMsg does not block forever:
// the queue fills, the socket's write times out, and with no new socket to take the
// frames (the server is gone) WriteMsg fails instead of queueing for ever. (A server
// that kept accepting reconnects would take the queue each time: WriteMsg queues, it
// does not wait for the peer to read.)
func TestWriteToStuckPeer(t *testing.T) {
	leakcheck.Check(t)
	rs := startRawServer(t, nil, false) // accepts, never reads
	c := newClient(t, rs.addr(), WithWriteTimeout(100*time.Millisecond), WithMaxPendingBytes(256<<10), WithReconnectBackoff(stopAfter(0)))
	ended := make(chan error, 1)
	go func() { ended <- c.RunForever() }() // ends when its reconnect gives up
	t.Cleanup(func() {
		_ = c.Close()
		recv(t, ended, 10*time.Second, "RunForever to return")
	})
	recv(t, rs.conns, 5*time.Second, "the connection")
	_ = rs.ln.Close() // no reconnect
	payload := make([]byte, 256<<10)
	_, _ = rand.Read(payload)
	start := time.Now()
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = c.WriteMsg(&IOMsg{Action: "x", Data: payload})
	}
	if err == nil {
		t.Fatal("1000 writes of 256 KiB to a peer that reads nothing all succeeded")
	}
	if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrConnClosed) {
		t.Fatalf("got %v, want ErrTimeout or ErrConnClosed", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
}

// TestSendFrameTooLarge: a message above the frame limit is refused by the sender (a
// peer with the same limit would drop the connection), whichever codec encodes it.
func TestSendFrameTooLarge(t *testing.T) {
	leakcheck.Check(t)
	_, addr, _ := startServer(t, WithMaxFrameSize(4<<10))
	c := dialClient(t, addr, WithMaxFrameSize(4<<10))
	mustRoundTrip(t, c, "handshake done") // fast codec from here on
	if !c.fastSend.Load() {
		t.Fatal("fast codec not negotiated")
	}
	big := make([]byte, 8<<10)
	_, _ = rand.Read(big)
	if err := c.WriteMsg(&IOMsg{Action: "x", Data: big}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("8 KiB payload: %v, want ErrFrameTooLarge", err)
	}
	if err := c.WriteMsg(&IOMsg{Action: strings.Repeat("a", 5000), Data: "small"}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("5000-byte action, small payload: %v, want ErrFrameTooLarge", err)
	}
	if err := c.WriteMsg(&IOMsg{Action: strings.Repeat("a", 5000)}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("5000-byte action, no payload: %v, want ErrFrameTooLarge", err)
	}
	mustRoundTrip(t, c, "the connection survived")
}

// TestOverPipe runs a client and a server-side connection over net.Pipe (no TCP):
// WrapConn with RunForever, and a client dialing through WithDialer.
func TestOverPipe(t *testing.T) {
	leakcheck.Check(t)
	srv := newServer()
	t.Cleanup(func() { _ = srv.Close() })
	a, b := net.Pipe()
	sc := srv.WrapConn(a)
	echoHandler(sc)
	scDone := make(chan error, 1)
	go func() { scDone <- sc.RunForever() }()
	used := false
	c := newClient(t, "pipe", WithDialer(func(context.Context, string) (net.Conn, error) {
		if used {
			return nil, errors.New("pipe already used")
		}
		used = true
		return b, nil
	}), WithReconnectBackoff(stopAfter(0)))
	run(t, c)
	for _, p := range []string{"a", string(compressible), strings.Repeat("z", 100<<10)} {
		mustRoundTrip(t, c, p)
	}
	if n := len(srv.Conns()); n != 1 {
		t.Fatalf("Conns() = %d, want 1", n)
	}
	_ = c.Close()
	if err := recv(t, scDone, 5*time.Second, "server conn to end"); err != nil {
		t.Fatalf("server conn RunForever: %v", err)
	}
}

// TestLargeMessages: multi-megabyte payloads (frames above the reusable read buffer)
// go through intact in both codecs.
func TestLargeMessages(t *testing.T) {
	leakcheck.Check(t)
	_, addr, _ := startServer(t)
	big := make([]byte, 5<<20)
	_, _ = rand.Read(big)
	for _, codec := range []Codec{CodecAuto, CodecZlib} {
		c := dialClient(t, addr, WithCodec(codec))
		mustRoundTrip(t, c, "handshake")
		mustRoundTrip(t, c, string(big))
		mustRoundTrip(t, c, "small after large")
	}
}

// TestAnnouncedFrameNotPreallocated: a header announcing a large frame whose bytes
// never come costs memory for what arrived, not for what was announced.
func TestAnnouncedFrameNotPreallocated(t *testing.T) {
	stream := binary.LittleEndian.AppendUint32(nil, 60<<20)
	stream = append(stream, "ten bytes."...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	msgs, _ := decodeStreamErr(t, stream)
	runtime.ReadMemStats(&after)
	if len(msgs) != 0 {
		t.Fatal("decoded a message from a truncated frame")
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 8<<20 {
		t.Fatalf("allocated %d MiB for a 60 MiB announcement with 10 bytes", d>>20)
	}
}

// countingConn counts Write calls (syscalls, for a TCP conn).
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{nc, l.writes}, nil
}

// TestWritesCoalesce: with many callers on one connection, requests and replies leave
// in batches, not one write syscall per frame, on both sides.
func TestWritesCoalesce(t *testing.T) {
	leakcheck.Check(t)
	var cw, sw atomic.Int64
	srv := newServer()
	srv.InitConn = echoHandler
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOn(t, srv, countingListener{ln, &sw})
	c := dialClient(t, addr, WithDialer(func(ctx context.Context, a string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			return nil, err
		}
		return countingConn{nc, &cw}, nil
	}))
	mustRoundTrip(t, c, "warm up")
	cw.Store(0)
	sw.Store(0)
	const callers, each = 64, 100
	concurrently(t, callers, func(int) error {
		for range each {
			if _, err := roundTrip(c, []byte("0123456789abcdef"), 10*time.Second); err != nil {
				return err
			}
		}
		return nil
	})
	n := float64(callers * each)
	perClient, perServer := float64(cw.Load())/n, float64(sw.Load())/n
	t.Logf("write calls per frame: client %.3f, server %.3f", perClient, perServer)
	if perClient > 0.5 || perServer > 0.5 {
		t.Fatalf("write calls per frame: client %.3f, server %.3f; want batches (< 0.5)", perClient, perServer)
	}
}

// TestTidyWriter: buffers a burst grew are kept while the connection is busy and given
// back once it has been idle for a whole interval, when its writer goroutine ends too;
// the next burst starts a new one.
func TestTidyWriter(t *testing.T) {
	leakcheck.Check(t)
	_, addr, _ := startServer(t)
	c := dialClient(t, addr)
	running := func() bool { c.out.mu.Lock(); defer c.out.mu.Unlock(); return c.out.running }
	burst := func() {
		t.Helper()
		for range 4 { // queued: the writer goroutine sends them
			if err := c.send("w", []byte("x"), nil, true, false, writeQueued); err != nil {
				t.Fatal(err)
			}
		}
		mustRoundTrip(t, c, "after the burst")
	}
	burst()
	if !running() {
		t.Fatal("no writer goroutine after a queued burst")
	}
	w := &c.out
	w.mu.Lock()
	w.spare = make([]byte, 0, 4*maxKeptBuffer)
	w.mu.Unlock()

	c.out.tidy() // a batch went out since the last look: busy
	w.mu.Lock()
	kept := cap(w.spare)
	w.mu.Unlock()
	if kept <= maxKeptBuffer || !running() {
		t.Fatalf("a busy connection gave back its buffer (%d bytes) or its writer (%v)", kept, running())
	}
	// Nothing since: idle. Each poll is one more interval, should anything have
	// gone through the writer meanwhile.
	waitUntil(t, 5*time.Second, "the idle writer goroutine to end", func() bool {
		c.out.tidy()
		return !running()
	})
	w.mu.Lock()
	kept = cap(w.spare)
	w.mu.Unlock()
	if kept > maxKeptBuffer {
		t.Fatalf("an idle connection kept %d bytes", kept)
	}

	// A wake left pending, and a retire asked for, while no writer goroutine runs
	// (as tidy might leave them just as the old one ends) must not end the next
	// goroutine: it takes the wake for the handoff that started it.
	w.mu.Lock()
	w.retiring = true
	w.wakeLocked()
	w.mu.Unlock()
	burst() // a new writer goroutine takes over
	mustRoundTrip(t, c, "once the new writer goroutine is idle")
	if !running() {
		t.Fatal("no writer goroutine for the next burst")
	}
}

// TestHeartbeatsKeepNoWriterGoroutine: pings and pongs are written inline, so an idle
// connection with heartbeats going lets both sides' writer goroutines end.
func TestHeartbeatsKeepNoWriterGoroutine(t *testing.T) {
	leakcheck.Check(t)
	hb := WithHeartbeat(20*time.Millisecond, 5*time.Second)
	_, addr, conns := startServer(t, hb)
	c := dialClient(t, addr, hb)
	sc := recv(t, conns, 5*time.Second, "server conn")
	for range 4 { // start the client's writer goroutine; the echoes start the server's
		if err := c.send("echo", []byte("k|x"), nil, true, false, writeQueued); err != nil {
			t.Fatal(err)
		}
	}
	mustRoundTrip(t, c, "after the burst")
	running := func(b *BanConn) bool { b.out.mu.Lock(); defer b.out.mu.Unlock(); return b.out.running }
	pings := func() uint64 { return sc.reads.Load() } // frames the server read
	before := pings()
	waitUntil(t, 5*time.Second, "both writer goroutines to end while heartbeats go on", func() bool {
		return !running(c.BanConn) && !running(sc)
	})
	waitUntil(t, 5*time.Second, "more pings", func() bool { return pings() > before+3 })
	if running(c.BanConn) || running(sc) {
		t.Fatalf("a heartbeat restarted a writer goroutine: client %v, server %v", running(c.BanConn), running(sc))
	}
}
