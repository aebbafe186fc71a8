package banio

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// Tests of the writer alone, without a BanConn: a writer over one end of a loopback
// TCP pair, the test reading the other end. Frames are 4-byte length-prefixed, as on
// the wire, so the reader can split what arrives.

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (near, far net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	near, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	far = recv(t, accepted, 5*time.Second, "accept")
	if far == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = near.Close(); _ = far.Close() })
	return near, far
}

// testFrame is one length-prefixed frame carrying s.
func testFrame(s string) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...)
}

// readFrames reads n frames from r (within d) and returns their bodies.
func readFrames(t *testing.T, nc net.Conn, n int, d time.Duration) []string {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(d))
	defer nc.SetReadDeadline(time.Time{})
	br := bufio.NewReader(nc)
	out := make([]string, 0, n)
	var hdr [4]byte
	for len(out) < n {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("after %d of %d frames: %v", len(out), n, err)
		}
		body := make([]byte, binary.LittleEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatalf("after %d of %d frames: %v", len(out), n, err)
		}
		out = append(out, string(body))
	}
	if br.Buffered() > 0 {
		t.Fatalf("%d bytes beyond the %d frames expected", br.Buffered(), n)
	}
	return out
}

// writerEvents records what a test writer's hooks were told.
type writerEvents struct {
	failed  chan net.Conn // socketFailed
	slow    chan struct{} // slowConsumer
	dropped chan int      // dropped
}

// newTestWriter makes a writer over nc (nil: none yet) and ends it with the test.
func newTestWriter(t *testing.T, nc net.Conn, cfg writerConfig) (*writer, *writerEvents) {
	t.Helper()
	if cfg.maxPending == 0 {
		cfg.maxPending = DefaultMaxPendingBytes
	}
	if cfg.writeTimeout == 0 {
		cfg.writeTimeout = 5 * time.Second
	}
	ev := &writerEvents{failed: make(chan net.Conn, 8), slow: make(chan struct{}, 8), dropped: make(chan int, 8)}
	w := new(writer)
	w.init(cfg, writerHooks{
		socketFailed: func(nc net.Conn, _ error) { ev.failed <- nc },
		slowConsumer: func() { ev.slow <- struct{}{} },
		dropped:      func(n int) { ev.dropped <- n },
	}, nc)
	t.Cleanup(func() {
		w.flushAndDetach(0)
		w.wg.Wait()
	})
	return w, ev
}

// gateConn is a socket whose Write calls are counted, and whose first Write waits,
// once it has begun (entered), until release is closed, then fails with fail if set.
type gateConn struct {
	net.Conn
	writes  atomic.Int64
	entered chan struct{}
	release chan struct{}
	fail    error
	once    sync.Once
}

func newGateConn(nc net.Conn) *gateConn {
	return &gateConn{Conn: nc, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gateConn) Write(p []byte) (int, error) {
	g.writes.Add(1)
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
		if g.fail != nil {
			return 0, g.fail
		}
	}
	return g.Conn.Write(p)
}

// TestWriterOrderManyProducers: frames from many producers, sent in every mode a
// caller uses, all arrive, each producer's in the order it sent them.
func TestWriterOrderManyProducers(t *testing.T) {
	leakcheck.Check(t)
	near, far := tcpPair(t)
	w, _ := newTestWriter(t, near, writerConfig{})
	const producers, each = 16, 300
	modes := []writeMode{writeQueued, writeInline, writeDefer | writeSpill, writeNoBlock}
	got := make(chan []string, 1)
	go func() {
		defer close(got)
		got <- readFrames(t, far, producers*each, 20*time.Second)
	}()
	concurrently(t, producers, func(p int) error {
		mode := modes[p%len(modes)]
		for n := range each {
			if err := w.write(testFrame(fmt.Sprintf("%d %d", p, n)), mode); err != nil {
				return fmt.Errorf("producer %d frame %d: %w", p, n, err)
			}
		}
		return nil
	})
	frames := recv(t, got, 30*time.Second, "every frame")
	next := make([]int, producers)
	for _, f := range frames {
		var p, n int
		if _, err := fmt.Sscanf(f, "%d %d", &p, &n); err != nil {
			t.Fatalf("frame %q: %v", f, err)
		}
		if n != next[p] {
			t.Fatalf("producer %d: frame %d arrived when %d was due", p, n, next[p])
		}
		next[p]++
	}
}

// TestWriterBatchesBehindAWrite: frames sent while the socket is being written pile up
// and leave together: one write for the frame in flight, one for the 200 behind it.
func TestWriterBatchesBehindAWrite(t *testing.T) {
	leakcheck.Check(t)
	near, far := tcpPair(t)
	g := newGateConn(near)
	w, _ := newTestWriter(t, g, writerConfig{})
	const behind = 200
	if err := w.write(testFrame("first"), writeQueued); err != nil {
		t.Fatal(err)
	}
	recv(t, g.entered, 5*time.Second, "the first write")
	concurrently(t, 8, func(p int) error {
		for n := range behind / 8 {
			if err := w.write(testFrame(fmt.Sprintf("%d %d", p, n)), writeInline); err != nil {
				return err
			}
		}
		return nil
	})
	close(g.release)
	frames := readFrames(t, far, 1+behind, 10*time.Second)
	if frames[0] != "first" {
		t.Fatalf("first frame %q", frames[0])
	}
	if n := g.writes.Load(); n != 2 {
		t.Fatalf("%d writes for %d frames sent behind one write, want 2", n, 1+behind)
	}
}

// TestWriterSlowConsumer: a peer that reads nothing fills the pending bound; a frame
// that must not wait (Broadcast's) then cuts it as a slow consumer, and later frames
// are refused. A frame that may wait fails with ErrTimeout once the write timeout
// passes without progress.
func TestWriterSlowConsumer(t *testing.T) {
	t.Run("NoBlock", func(t *testing.T) {
		leakcheck.Check(t)
		near, _ := tcpPair(t) // the far end never reads
		_ = near.(*net.TCPConn).SetWriteBuffer(16 << 10)
		w, ev := newTestWriter(t, near, writerConfig{maxPending: 64 << 10})
		frame := testFrame(strings.Repeat("x", 16<<10))
		var err error
		for i := 0; i < 4096 && err == nil; i++ {
			err = w.write(frame, writeNoBlock)
		}
		if !errors.Is(err, ErrSlowConsumer) {
			t.Fatalf("got %v, want ErrSlowConsumer", err)
		}
		recv(t, ev.slow, 5*time.Second, "the slow-consumer hook")
		if err := w.write(testFrame("later"), writeQueued); !errors.Is(err, ErrConnClosed) {
			t.Fatalf("a frame after the cut: %v, want ErrConnClosed", err)
		}
	})
	t.Run("Queued", func(t *testing.T) {
		leakcheck.Check(t)
		near, _ := tcpPair(t)
		_ = near.(*net.TCPConn).SetWriteBuffer(16 << 10)
		w, ev := newTestWriter(t, near, writerConfig{maxPending: 64 << 10, writeTimeout: 100 * time.Millisecond})
		frame := testFrame(strings.Repeat("x", 16<<10))
		var err error
		for i := 0; i < 4096 && err == nil; i++ {
			err = w.write(frame, writeQueued)
		}
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("got %v, want ErrTimeout", err)
		}
		none(t, ev.slow, "a frame that may wait cut the connection")
	})
}

// TestWriterSpill: with the queue full, a frame that must not wait waits for room on a
// goroutine of its own, for at most another bound's worth of frames. Past that, a
// connection that reconnects fails the frame (ErrLimit) and one that does not is cut;
// a spilled frame that finds no room within the write timeout is dropped (reconnects)
// or cuts the connection.
func TestWriterSpill(t *testing.T) {
	for _, reconnects := range []bool{true, false} {
		t.Run(fmt.Sprintf("reconnects=%v", reconnects), func(t *testing.T) {
			leakcheck.Check(t)
			// No socket: nothing leaves, the queue stays full.
			w, ev := newTestWriter(t, nil, writerConfig{maxPending: 1 << 10, writeTimeout: 50 * time.Millisecond, reconnects: reconnects})
			frame := testFrame(strings.Repeat("x", 700))
			if err := w.write(frame, writeQueued); err != nil {
				t.Fatal(err)
			}
			if err := w.write(frame, writeDefer|writeSpill); err != nil {
				t.Fatalf("the first spilled frame: %v", err)
			}
			err := w.write(frame, writeDefer|writeSpill)
			if reconnects && !errors.Is(err, ErrLimit) || !reconnects && !errors.Is(err, ErrSlowConsumer) {
				t.Fatalf("past the spill bound: %v", err)
			}
			if reconnects {
				if n := recv(t, ev.dropped, 5*time.Second, "the spilled frame dropped"); n != len(frame) {
					t.Fatalf("dropped %d bytes, want %d", n, len(frame))
				}
			} else {
				recv(t, ev.slow, 5*time.Second, "the slow-consumer hook")
			}
		})
	}
}

// TestWriterCloseFlushes: frames pending when flushAndDetach starts are written before
// it returns the socket, behind the write in flight.
func TestWriterCloseFlushes(t *testing.T) {
	leakcheck.Check(t)
	near, far := tcpPair(t)
	g := newGateConn(near)
	w, _ := newTestWriter(t, g, writerConfig{})
	if err := w.write(testFrame("0"), writeQueued); err != nil {
		t.Fatal(err)
	}
	recv(t, g.entered, 5*time.Second, "the first write")
	const n = 50
	for i := 1; i < n; i++ {
		if err := w.write(testFrame(fmt.Sprint(i)), writeQueued); err != nil {
			t.Fatal(err)
		}
	}
	detached := make(chan net.Conn, 1)
	go func() { detached <- w.flushAndDetach(time.Second) }()
	// Release the write in flight only once Close has begun, so that what is pending
	// is Close's to write, not the writer goroutine's. A bounded poll: flushAndDetach
	// signals nothing before it waits for the owner.
	waitUntil(t, 5*time.Second, "flushAndDetach to begin", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.closing
	})
	close(g.release)
	if nc := recv(t, detached, 5*time.Second, "flushAndDetach"); nc != net.Conn(g) {
		t.Fatalf("flushAndDetach returned %v, want the socket", nc)
	}
	_ = near.Close()
	frames := readFrames(t, far, n, 5*time.Second)
	for i, f := range frames {
		if f != fmt.Sprint(i) {
			t.Fatalf("frame %d is %q", i, f)
		}
	}
	if err := w.write(testFrame("late"), writeQueued); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("a frame after Close: %v, want ErrConnClosed", err)
	}
}

// TestWriterCloseGraceBounded: Close's flush to a peer that reads nothing gives up when
// its grace ends, cutting short the write in flight, whose deadline was much longer.
func TestWriterCloseGraceBounded(t *testing.T) {
	leakcheck.Check(t)
	near, _ := tcpPair(t)
	_ = near.(*net.TCPConn).SetWriteBuffer(16 << 10)
	w, ev := newTestWriter(t, near, writerConfig{maxPending: 8 << 20, writeTimeout: time.Minute})
	big := testFrame(strings.Repeat("x", 4<<20))
	if err := w.write(big, writeQueued); err != nil {
		t.Fatal(err)
	}
	if err := w.write(big, writeQueued); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w.flushAndDetach(200 * time.Millisecond)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("flushAndDetach with a 200ms grace took %v", d)
	}
	none(t, ev.failed, "a write cut short by Close reported a socket failure")
}

// TestWriterSocketFailure: a write that fails drops the socket and says so; the frames
// pending behind it stay for the next socket, where the frames attach puts first
// (a reconnecting client's hello and subscriptions) go ahead of them.
func TestWriterSocketFailure(t *testing.T) {
	leakcheck.Check(t)
	near, _ := tcpPair(t)
	g := newGateConn(near)
	g.fail = errors.New("connection reset")
	w, ev := newTestWriter(t, g, writerConfig{reconnects: true})
	if err := w.write(testFrame("lost"), writeQueued); err != nil {
		t.Fatal(err)
	}
	recv(t, g.entered, 5*time.Second, "the first write")
	for i := range 10 {
		if err := w.write(testFrame(fmt.Sprint(i)), writeQueued); err != nil {
			t.Fatal(err)
		}
	}
	close(g.release)
	if nc := recv(t, ev.failed, 5*time.Second, "socketFailed"); nc != net.Conn(g) {
		t.Fatalf("socketFailed for %v, want the failed socket", nc)
	}
	// Without a socket, frames queue.
	if err := w.write(testFrame("10"), writeInline); err != nil {
		t.Fatal(err)
	}
	near2, far2 := tcpPair(t)
	if !w.attach(near2, append(testFrame("hello"), testFrame("subscribe")...)) {
		t.Fatal("attach refused")
	}
	frames := readFrames(t, far2, 13, 5*time.Second)
	want := []string{"hello", "subscribe", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}
	if strings.Join(frames, ",") != strings.Join(want, ",") {
		t.Fatalf("on the new socket: %v, want %v", frames, want)
	}
}

// TestWriterInlineFailure: a caller whose own frame could not be written learns so.
func TestWriterInlineFailure(t *testing.T) {
	leakcheck.Check(t)
	near, _ := tcpPair(t)
	w, ev := newTestWriter(t, near, writerConfig{reconnects: true})
	_ = near.Close()
	err := w.write(testFrame("x"), writeOneOff)
	if !errors.Is(err, ErrConnClosed) {
		t.Fatalf("a frame written to a closed socket: %v, want ErrConnClosed", err)
	}
	recv(t, ev.failed, 5*time.Second, "socketFailed")
}

// TestWriterDetachAttach: frames written while detached wait for the next socket, and
// detaching a socket that is no longer the current one changes nothing.
func TestWriterDetachAttach(t *testing.T) {
	leakcheck.Check(t)
	near1, far1 := tcpPair(t)
	w, _ := newTestWriter(t, near1, writerConfig{reconnects: true})
	if err := w.write(testFrame("one"), writeQueued); err != nil {
		t.Fatal(err)
	}
	if f := readFrames(t, far1, 1, 5*time.Second); f[0] != "one" {
		t.Fatalf("got %q", f[0])
	}
	w.detach(near1)
	for _, s := range []string{"two", "three"} {
		if err := w.write(testFrame(s), writeInline); err != nil {
			t.Fatal(err)
		}
	}
	near2, far2 := tcpPair(t)
	if !w.attach(near2, testFrame("hello")) {
		t.Fatal("attach refused")
	}
	w.detach(near1) // stale: near2 stays
	if err := w.write(testFrame("four"), writeQueued); err != nil {
		t.Fatal(err)
	}
	frames := readFrames(t, far2, 4, 5*time.Second)
	if got := strings.Join(frames, ","); got != "hello,two,three,four" {
		t.Fatalf("on the new socket: %s", got)
	}
	_ = far1.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _ := far1.Read(make([]byte, 1)); n != 0 {
		t.Fatal("a frame went to the detached socket")
	}
}

// BenchmarkBatchWrite compares the two ways a writer can hand a batch of frames to the
// kernel, over loopback TCP: copied into one contiguous buffer and written, or kept as
// separate buffers and written with writev (net.Buffers). The writev case leaves out
// what owning each frame's buffer until written would cost the writer.
func BenchmarkBatchWrite(b *testing.B) {
	for _, c := range []struct{ size, frames int }{{64, 1}, {64, 64}, {64 << 10, 1}, {64 << 10, 8}} {
		frames := make([][]byte, c.frames)
		for i := range frames {
			frames[i] = testFrame(strings.Repeat("x", c.size-4))
		}
		for _, way := range []string{"contiguous", "writev"} {
			b.Run(fmt.Sprintf("%s/%s/frames=%d", way, sizeName(c.size), c.frames), func(b *testing.B) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				drained := make(chan struct{})
				go func() {
					defer close(drained)
					far, err := ln.Accept()
					if err == nil {
						_, _ = io.Copy(io.Discard, far)
						_ = far.Close()
					}
				}()
				nc, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(c.size * c.frames))
				b.ReportAllocs()
				var buf []byte
				bufs := make(net.Buffers, 0, c.frames)
				for b.Loop() {
					if way == "contiguous" {
						buf = buf[:0]
						for _, f := range frames {
							buf = append(buf, f...)
						}
						_, err = nc.Write(buf)
					} else {
						bufs = append(bufs[:0], frames...)
						_, err = bufs.WriteTo(nc)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				_ = nc.Close()
				<-drained
			})
		}
	}
}

// TestWriterOneOffOverTLS: a one-off frame (a client's hello) on a TLS socket whose peer
// has not answered the handshake yet is not written inline by its sender, who must not
// wait: that write is the handshake, which blocks its caller until the peer answers,
// and under a brief deadline leaves the TLS connection broken for good. The frame
// leaves through the writer goroutine, and arrives once the peer serves the handshake.
func TestWriterOneOffOverTLS(t *testing.T) {
	leakcheck.Check(t)
	cert, pool := selfSigned(t)
	near, far := tcpPair(t)
	client := tls.Client(near, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	w, ev := newTestWriter(t, client, writerConfig{reconnects: true})
	t.Cleanup(func() { _ = near.Close() }) // first: it ends a write stuck in the handshake
	wrote := make(chan error, 1)
	go func() { wrote <- w.write(testFrame("hello"), writeOneOff) }()
	// Written inline, the frame's write would be the handshake, blocked reading an
	// answer that has not come (a write deadline does not bound that read).
	if err := recv(t, wrote, 5*time.Second, "a one-off write on a TLS socket mid-handshake"); err != nil {
		t.Fatalf("a one-off frame on a TLS socket mid-handshake: %v", err)
	}
	// Only now does the peer answer the handshake.
	server := tls.Server(far, &tls.Config{Certificates: []tls.Certificate{cert}})
	if frames := readFrames(t, server, 1, 10*time.Second); frames[0] != "hello" {
		t.Fatalf("received %q, want hello", frames[0])
	}
	none(t, ev.failed, "the TLS socket failed")
}

// deadlineConn records the write deadlines set on a socket.
type deadlineConn struct {
	net.Conn
	mu  sync.Mutex
	set []time.Time
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	d.set = append(d.set, t)
	d.mu.Unlock()
	return d.Conn.SetWriteDeadline(t)
}

func (d *deadlineConn) deadlines() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Time(nil), d.set...)
}

// TestWriterKeepsAFreshDeadline: batches written one after another share the deadline
// the first one set, while it is far enough away; a brief write that must give up
// sooner still gets its own short deadline.
func TestWriterKeepsAFreshDeadline(t *testing.T) {
	leakcheck.Check(t)
	near, far := tcpPair(t)
	dc := &deadlineConn{Conn: near}
	const timeout = time.Hour
	w, _ := newTestWriter(t, dc, writerConfig{writeTimeout: timeout})
	for n := range 50 {
		if err := w.write(testFrame(strconv.Itoa(n)), writeQueued); err != nil {
			t.Fatal(err)
		}
		readFrames(t, far, 1, 5*time.Second) // so that each frame is a batch of its own
	}
	set := dc.deadlines()
	if len(set) != 1 {
		t.Fatalf("50 batches set %d deadlines, want one", len(set))
	}
	if away := time.Until(set[0]); away < timeout-timeout/rearmSlack {
		t.Fatalf("the batches' deadline was %v away, want about %v", away, timeout)
	}

	w.setWriteDeadline(dc, briefWrite) // what a brief inline write does
	set = dc.deadlines()
	if len(set) != 2 || time.Until(set[1]) > briefWrite {
		t.Fatalf("a brief write left %d deadlines set, the last %v away; want 2, the last at most %v away", len(set), time.Until(set[len(set)-1]), briefWrite)
	}
	w.setWriteDeadline(dc, timeout)
	if set = dc.deadlines(); len(set) != 3 {
		t.Fatalf("the deadline after a brief one was not moved back out (%d set)", len(set))
	}
}
