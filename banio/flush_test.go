package banio

import (
	"bufio"
	"encoding/binary"
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

// countConn counts the Write calls made on a socket.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// drainFrames reads length-prefixed frames from r until it fails, counting them.
func drainFrames(r io.Reader, frames *atomic.Int64) {
	br := bufio.NewReader(r)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, br, int64(binary.LittleEndian.Uint32(hdr[:]))); err != nil {
			return
		}
		frames.Add(1)
	}
}

// wrapPipe makes a server-side connection over one end of a net.Pipe, runs its read
// loop, and returns it with the other end.
func wrapPipe(t *testing.T, srv *ServerIO, wrap func(net.Conn) net.Conn) (*BanConn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	c := srv.WrapConn(wrap(a))
	done := make(chan struct{})
	go func() { defer close(done); _ = c.RunForever() }()
	t.Cleanup(func() {
		_ = c.Close()
		_ = b.Close()
		<-done
	})
	return c, b
}

// quiet waits until no read loop is in a batch: from then on, in a test whose peers
// send nothing unasked, only the test ends batches.
func quiet(t *testing.T) {
	t.Helper()
	waitUntil(t, 5*time.Second, "no read loop in a batch", func() bool { return deferred.inBatch.Load() == 0 })
	time.Sleep(10 * time.Millisecond) // the last one to leave its batch finishes its flush
}

// TestReadBatchOneWritePerDestination: a read loop whose handler forwards each frame
// of a burst (read in one read) to three other connections defers the deliveries to
// the end of the batch: each destination's socket sees one write carrying the whole
// burst, not one write per frame on the read loop.
func TestReadBatchOneWritePerDestination(t *testing.T) {
	leakcheck.Check(t)
	srv := newServer()
	t.Cleanup(func() { _ = srv.Close() })
	const dests, burst = 3, 20
	var conns [dests]*countConn
	var frames [dests]atomic.Int64
	var out [dests]*BanConn
	for i := range dests {
		c, peer := wrapPipe(t, srv, func(nc net.Conn) net.Conn { conns[i] = &countConn{Conn: nc}; return conns[i] })
		out[i] = c
		go drainFrames(peer, &frames[i])
	}
	src, peer := wrapPipe(t, srv, func(nc net.Conn) net.Conn { return nc })
	src.ListenInline("fwd", func(m *IOMsgRaw) {
		for _, c := range out {
			if err := c.WriteMsgNoBlock(&IOMsg{Action: "got", Data: m.Data}); err != nil {
				t.Errorf("WriteMsgNoBlock: %v", err)
			}
		}
	})
	var all []byte
	for n := range burst {
		all = append(all, refEncodeFrame(t, "fwd", []byte(strconv.Itoa(n)), false, nil)...)
	}
	if len(all) > readBufferSize {
		t.Fatalf("burst of %d bytes does not fit one read", len(all))
	}
	if _, err := peer.Write(all); err != nil { // one write: one read on the other end
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "every frame at every destination", func() bool {
		for i := range dests {
			if frames[i].Load() < burst {
				return false
			}
		}
		return true
	})
	for i, c := range conns {
		if n := c.writes.Load(); n != 1 {
			t.Errorf("destination %d: %d writes for a burst of %d frames, want 1", i, n, burst)
		}
	}
}

// TestDeferredFromNonReader: a frame deferred by a goroutine that is not a read loop,
// while no read loop is in a batch, is sent at once; one deferred while a read loop is
// in a batch leaves when that batch ends.
func TestDeferredFromNonReader(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr)
	mustRoundTrip(t, c, "connected")
	sc := recv(t, conns, 5*time.Second, "server conn")
	got := make(chan string, 4)
	c.ListenInline("got", func(m *IOMsgRaw) { got <- string(m.Data) })

	if err := sc.WriteMsgNoBlock(&IOMsg{Action: "got", Data: "lone"}); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, got, 2*time.Second, "a frame deferred outside any batch"); s != "lone" {
		t.Fatalf("got %q", s)
	}

	quiet(t)
	deferred.begin() // as a read loop in a batch would
	if err := sc.SendWaitResNoBlock("k", "x"); err != nil {
		deferred.end()
		t.Fatal(err)
	}
	if err := sc.WriteMsgNoBlock(&IOMsg{Action: "got", Data: "batched"}); err != nil {
		deferred.end()
		t.Fatal(err)
	}
	select {
	case s := <-got:
		deferred.end()
		t.Fatalf("%q arrived before the batch ended", s)
	case <-time.After(50 * time.Millisecond):
	}
	deferred.end()
	if s := recv(t, got, 2*time.Second, "a frame deferred in a batch, after the batch"); s != "batched" {
		t.Fatalf("got %q", s)
	}
}

// TestDeferredFullQueue: a read loop that must wait for room behind its own deferred
// frames (a blocking send amid a burst of deferred ones) does not wait for a flush that
// only its batch's end would bring: the frames leave, and so does the blocking one.
func TestDeferredFullQueue(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t, WithMaxPendingBytes(8<<10), WithWriteTimeout(5*time.Second))
	c := dialClient(t, addr)
	mustRoundTrip(t, c, "connected")
	sc := recv(t, conns, 5*time.Second, "server conn")
	var n atomic.Int64
	c.ListenInline("got", func(*IOMsgRaw) { n.Add(1) })
	pad := strings.Repeat("p", 3000)
	quiet(t)
	deferred.begin() // as a read loop in a batch would
	start := time.Now()
	for range 2 { // 6 KB deferred: the next 3 KB frame must wait for room
		if err := sc.WriteMsgNoBlock(&IOMsg{Action: "got", Data: pad}); err != nil {
			deferred.end()
			t.Fatal(err)
		}
	}
	err := sc.WriteMsg(&IOMsg{Action: "got", Data: pad}) // waits for room
	elapsed := time.Since(start)
	deferred.end()
	if err != nil {
		t.Fatalf("blocking send behind deferred frames: %v", err)
	}
	if elapsed > 2*time.Second {
		t.Fatalf("blocking send waited %v for room behind deferred frames", elapsed)
	}
	waitUntil(t, 5*time.Second, "all 3 frames", func() bool { return n.Load() == 3 })
}

// TestDeferredStress: many read loops forward to each other with deferred sends while
// other goroutines defer frames too; every frame arrives (none is left unflushed), and
// no goroutine outlives the test.
func TestDeferredStress(t *testing.T) {
	leakcheck.Check(t)
	const clients, senders, each, outside = 6, 3, 400, 400
	srv := newServer()
	var mu sync.Mutex
	byID := map[int]*BanConn{}
	ready := make(chan struct{}, clients)
	srv.InitConn = func(sc *BanConn) {
		sc.ListenInline("id", func(m *IOMsgRaw) {
			id, _ := strconv.Atoi(string(m.Data))
			mu.Lock()
			byID[id] = sc
			mu.Unlock()
			ready <- struct{}{}
		})
		sc.ListenInline("fwd", func(m *IOMsgRaw) {
			to, _ := strconv.Atoi(string(m.Data[:strings.IndexByte(string(m.Data), ' ')]))
			mu.Lock()
			dst := byID[to]
			mu.Unlock()
			if err := dst.WriteMsgNoBlock(&IOMsg{Action: "got", Data: m.Data}); err != nil {
				t.Errorf("forward: %v", err)
			}
		})
	}
	addr := serve(t, srv)
	var got [clients]atomic.Int64
	cs := make([]*ClientIO, clients)
	for i := range clients {
		cs[i] = dialClient(t, addr)
		cs[i].ListenInline("got", func(*IOMsgRaw) { got[i].Add(1) })
		if err := cs[i].WriteMsg(&IOMsg{Action: "id", Data: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for range clients {
		recv(t, ready, 5*time.Second, "every client known")
	}
	var want [clients]int64
	for i := range clients {
		for s := range senders {
			for n := range each {
				want[(i+s+n)%clients]++
			}
		}
	}
	for n := range outside {
		want[n%clients]++
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range each {
					data := fmt.Sprintf("%d %d", (i+s+n)%clients, n)
					if err := c.WriteMsg(&IOMsg{Action: "fwd", Data: data}); err != nil {
						t.Errorf("send: %v", err)
						return
					}
				}
			}()
		}
	}
	for g := range 4 { // goroutines that are no read loop, during the forwarding and after
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := g; n < outside; n += 4 {
				if n%16 == g {
					time.Sleep(time.Millisecond) // some land while no read loop is busy
				}
				mu.Lock()
				dst := byID[n%clients]
				mu.Unlock()
				if err := dst.WriteMsgNoBlock(&IOMsg{Action: "got", Data: "outside"}); err != nil {
					t.Errorf("outside send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitUntil(t, 8*time.Second, "every frame delivered (well within a heartbeat, which would flush a stuck one)", func() bool {
		for i := range clients {
			if got[i].Load() != want[i] {
				return false
			}
		}
		return true
	})
}
