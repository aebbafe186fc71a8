package banio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/faultproxy"
	"github.com/banfleet/banfleet/internal/leakcheck"
)

// The master-hardening findings, one test each: what a stranger or a slow link could do
// to a server before, and what it must not be able to do now.

// allocatedDuring reports how many bytes the process allocated while fn ran. The
// margins the tests use are hundreds of megabytes: other goroutines cannot blur them.
func allocatedDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestUnauthenticatedBombNotInflated: on a token server, a zlib bomb from a peer that
// never sent a token is not decompressed (before: inflated up to the limit, and the
// connection stayed open after ErrInflatedTooLarge); the peer is closed at once.
func TestUnauthenticatedBombNotInflated(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t, WithToken("s3cret"), WithAuthPenalty(0, 0))
	bomb := zlibOf(t, make([]byte, 12<<20)) // ~12 KB on the wire, 12 MiB inflated
	used := allocatedDuring(func() {
		p := dialRaw(t, addr, nil)
		sc := recv(t, conns, 5*time.Second, "raw conn")
		p.write(appendFrame(nil, "echo", bomb, true))
		p.expectClosed(5 * time.Second)
		<-sc.Done()
		if !errors.Is(sc.Err(), ErrAuthFailed) {
			t.Errorf("closed with %v, want ErrAuthFailed", sc.Err())
		}
	})
	if used > 4<<20 {
		t.Fatalf("the server allocated %d MB for a stranger's bomb", used>>20)
	}
}

// TestHandshakeLimits: before authenticating a peer can make the server hold one frame
// of at most maxHandshakeBytes, and its hello inflates to at most that.
func TestHandshakeLimits(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t, WithToken("s3cret"), WithAuthPenalty(0, 0))

	p := dialRaw(t, addr, nil)
	sc := recv(t, conns, 5*time.Second, "raw conn")
	p.write(binary.LittleEndian.AppendUint32(nil, maxHandshakeBytes+1))
	p.expectClosed(5 * time.Second)
	<-sc.Done()
	if !errors.Is(sc.Err(), ErrFrameTooLarge) {
		t.Fatalf("large frame before auth: closed with %v, want ErrFrameTooLarge", sc.Err())
	}

	p = dialRaw(t, addr, nil)
	sc = recv(t, conns, 5*time.Second, "raw conn")
	hello := `{"v":1,"token":"` + strings.Repeat("x", 1<<20) + `"}` // compresses to a few KB
	p.write(appendFrame(nil, actionHello, zlibOf(t, []byte(hello)), true))
	p.expectClosed(5 * time.Second)
	<-sc.Done()
	if !errors.Is(sc.Err(), ErrInflatedTooLarge) {
		t.Fatalf("oversized hello: closed with %v, want ErrInflatedTooLarge", sc.Err())
	}
}

// TestS2ClaimedLengthCheckedFirst: an s2 payload announcing a huge decoded length is
// refused before anything is allocated for it, and the peer is disconnected (before:
// 78 bytes made the server allocate and zero the claimed length, then skip the frame).
func TestS2ClaimedLengthCheckedFirst(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	p := dialRaw(t, addr, nil)
	sc := recv(t, conns, 5*time.Second, "raw conn")
	p.send(actionHello, []byte(`{"v":1,"codecs":["s2"]}`), true)
	p.expect(actionWelcome)
	block := binary.AppendUvarint([]byte{tagS2}, 200<<20) // claims 200 MiB
	block = append(block, bytes.Repeat([]byte{0xfe}, 70)...)
	used := allocatedDuring(func() {
		p.write(appendFrame(nil, "echo", block, true))
		p.expectClosed(5 * time.Second)
		<-sc.Done()
	})
	if !errors.Is(sc.Err(), ErrInflatedTooLarge) {
		t.Errorf("closed with %v, want ErrInflatedTooLarge", sc.Err())
	}
	if used > 32<<20 {
		t.Fatalf("the server allocated %d MB for a %d-byte s2 frame", used>>20, len(block))
	}
}

// TestInflateStopsAtLimit: the inflate buffer never grows past the limit (before:
// bytes.Buffer doubled past it, so one message could hold up to twice the cap), and a
// bomb is refused with ErrInflatedTooLarge.
func TestInflateStopsAtLimit(t *testing.T) {
	const limit = 3 << 20
	for _, n := range []int{limit - 100<<10, limit} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i % 251) // compressible, not a stored block
		}
		out, err := inflateZlib(zlibOf(t, data), limit)
		if err != nil || len(out) != n {
			t.Fatalf("%d bytes: len %d, err %v", n, len(out), err)
		}
		if cap(out) > limit+1 {
			t.Fatalf("%d bytes under a %d limit: buffer grew to %d", n, limit, cap(out))
		}
	}
	if _, err := inflateZlib(zlibOf(t, make([]byte, limit+1)), limit); !errors.Is(err, ErrInflatedTooLarge) {
		t.Fatalf("bomb: err %v, want ErrInflatedTooLarge", err)
	}
}

// TestFastSenderFallsBackForHugeRatios: data more compressible than the receiver's s2
// bound goes out as zlib, which a receiver inflates incrementally, and arrives intact.
func TestFastSenderFallsBackForHugeRatios(t *testing.T) {
	zeros := make([]byte, 4<<20)
	enc := appendFast(nil, zeros)
	if enc[0] == tagS2 {
		t.Fatal("4 MiB of zeros sent as s2, beyond maxS2Expansion")
	}
	dec, err := decodePayload(enc, true, 8<<20)
	if err != nil || !bytes.Equal(dec, zeros) {
		t.Fatalf("round trip: %v", err)
	}
	text := []byte(strings.Repeat("line 0001 the quick brown fox jumps over the lazy dog\n", 80))
	if enc := appendFast(nil, text); enc[0] != tagS2 {
		t.Fatalf("ordinary text sent with tag %#x, want s2", enc[0])
	}
}

// dialFrom dials addr from the loopback address local (127.0.0.x), so that a test can
// play several hosts.
func dialFrom(t testing.TB, local, addr string) *rawPeer {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawPeer{t: t, nc: nc}
}

// expectRefused reads the refusal welcome a refused peer gets, then the close.
func (p *rawPeer) expectRefused(code string) {
	p.t.Helper()
	m := p.expect(actionWelcome)
	if !bytes.Contains(m.Data, []byte(`"code":"`+code+`"`)) {
		p.t.Fatalf("welcome %s, want code %q", m.Data, code)
	}
	p.expectClosed(5 * time.Second)
}

// TestConnLimits: connections past the per-address or the total cap are refused with a
// welcome that says why, before they cost a BanConn; closing one makes room again.
func TestConnLimits(t *testing.T) {
	leakcheck.Check(t)
	srv, addr, conns := startServer(t, WithMaxConns(3, 2))
	a1, a2 := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	a1.barrier()
	a2.barrier()
	first := recv(t, conns, 5*time.Second, "first conn")
	dialFrom(t, "127.0.0.1", addr).expectRefused(refuseConnLimit) // per address
	b1 := dialFrom(t, "127.0.0.2", addr)
	b1.barrier()
	dialFrom(t, "127.0.0.3", addr).expectRefused(refuseConnLimit) // total
	if got := srv.Refused(); got != 2 {
		t.Fatalf("Refused() = %d, want 2", got)
	}

	// A banfleet client learns why, as ErrRefused.
	c, err := NewClientIO(addr, WithToken("irrelevant"))
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("NewClientIO at the cap: %v, want ErrRefused", err)
	}
	if c != nil {
		_ = c.Close()
	}

	_ = first.Close()
	<-first.Done()
	dialFrom(t, "127.0.0.3", addr).barrier() // room again
}

// TestConnCapLeavesDescriptors: the total cap fits within the file descriptor limit,
// leaving room for the status server and files.
func TestConnCapLeavesDescriptors(t *testing.T) {
	for _, fds := range []int{256, 1024, 4096, 1 << 20} {
		limit := min(DefaultMaxConns, fds-fdReserve(fds))
		if limit <= 0 || fds-limit < 64 {
			t.Fatalf("fd limit %d: cap %d leaves %d descriptors", fds, limit, fds-limit)
		}
	}
	if fds := fdLimit(); fds > 0 && connCap(DefaultMaxConns) > fds-64 {
		t.Fatalf("cap %d with %d descriptors", connCap(DefaultMaxConns), fds)
	}
}

// TestLivenessIgnoresJunk: zero-length frames do not keep a connection alive, whether
// its peer pings (said hello) or never sent anything decodable (before: any frame
// counted as liveness, so such connections stayed open forever).
func TestLivenessIgnoresJunk(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t, WithHeartbeat(20*time.Millisecond, 200*time.Millisecond))
	pinger := dialRaw(t, addr, nil)
	pingerConn := recv(t, conns, 5*time.Second, "pinger conn")
	pinger.send(actionHello, []byte(`{"v":1}`), true)
	pinger.expect(actionWelcome)
	junk := dialRaw(t, addr, nil)
	junkConn := recv(t, conns, 5*time.Second, "junk conn")

	// Both peers send an empty frame every 10 ms, far more often than the 20 ms
	// interval, until the server closes each of them (or 10 s pass).
	empty := binary.LittleEndian.AppendUint32(nil, 0)
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.After(10 * time.Second)
	pingerDone, junkDone := pingerConn.Done(), junkConn.Done()
	for pingerDone != nil || junkDone != nil {
		select {
		case <-ticker.C:
			_, _ = pinger.nc.Write(empty)
			_, _ = junk.nc.Write(empty)
		case <-pingerDone:
			pingerDone = nil
		case <-junkDone:
			junkDone = nil
		case <-deadline:
			t.Fatalf("still open after 10 s of empty frames: pinger %v, junk %v", !pingerConn.IsClosed(), !junkConn.IsClosed())
		}
	}
	if !errors.Is(pingerConn.Err(), errHeartbeat) || !errors.Is(junkConn.Err(), errNothingValid) {
		t.Fatalf("closed with %v and %v", pingerConn.Err(), junkConn.Err())
	}
}

// TestSilentBanbotClientKept: a banbot client that subscribed (with banbot's own frame,
// from the golden vectors) and never pings (banbot's Telegram RPC client) is not timed
// out for silence, and keeps its subscription; a
// connection that never sent anything decodable, opened with it, is (it is the proof
// that the sweep ran past the timeout).
func TestSilentBanbotClientKept(t *testing.T) {
	leakcheck.Check(t)
	srv, addr, conns := startServer(t, WithHeartbeat(20*time.Millisecond, 200*time.Millisecond))
	banbot := dialRaw(t, addr, nil)
	banbotConn := recv(t, conns, 5*time.Second, "banbot conn")
	banbot.write(readTestdata(t, "subscribe.bin")) // banbot's own subscribe frame
	banbot.barrier()
	_ = dialRaw(t, addr, nil) // the control: connects and sends nothing
	controlConn := recv(t, conns, 5*time.Second, "control conn")
	select {
	case <-controlConn.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the silent control connection was never closed")
	}
	if !errors.Is(controlConn.Err(), errNothingValid) {
		t.Fatalf("control closed with %v", controlConn.Err())
	}
	// Still served and still subscribed, long past the timeout.
	if banbotConn.IsClosed() {
		t.Fatalf("silent banbot client closed: %v", banbotConn.Err())
	}
	const tag = "price_binance_linear" // one of the golden frame's two tags
	if err := srv.Broadcast(&IOMsg{Action: tag, Data: "t1"}); err != nil {
		t.Fatal(err)
	}
	if m := banbot.expect(tag); string(m.Data) != "t1" {
		t.Fatalf("broadcast %q", m.Data)
	}
}

// TestLargeFramesOverSlowLink: the write timeout bounds a stall, not a frame's size,
// and bytes of a frame still arriving (or leaving) are liveness. A 12 MB message crosses
// a 4 MB/s link both ways, 3 s each way, with a 1.5 s write timeout and a 1.5 s heartbeat
// timeout (before: one deadline covered the whole write, and only whole frames counted
// as alive). TCP drains a slow link's send buffer in bursts, a few hundred ms apart at
// this rate: the timeouts must exceed those gaps, not the transfer.
func TestLargeFramesOverSlowLink(t *testing.T) {
	leakcheck.Check(t)
	opts := []Option{WithWriteTimeout(1500 * time.Millisecond), WithHeartbeat(100*time.Millisecond, 1500*time.Millisecond), compressLocal()}
	_, addr, conns := startServer(t, opts...)
	proxy, err := faultproxy.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	c := dialClient(t, proxy.Addr(), append(opts, WithReconnectBackoff(stopAfter(0)))...)
	mustRoundTrip(t, c, "before")
	sc := recv(t, conns, 5*time.Second, "server conn")
	proxy.SetRate(4 << 20)

	payload := make([]byte, 12<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(payload) // incompressible
	got, err := roundTrip(c, payload, 30*time.Second)
	if err != nil {
		t.Fatalf("12 MB round trip over a slow link: %v (server conn closed: %v)", err, sc.Err())
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("payload changed on the way")
	}
	if sc.IsClosed() {
		t.Fatalf("server closed the connection: %v", sc.Err())
	}
}

// TestAuthThrottle: a failed authentication bars its host for a while, and the
// failures of a flood are logged once, not twice per guess.
func TestAuthThrottle(t *testing.T) {
	leakcheck.Check(t)
	logOpt, logs := captureLogs()
	srv, addr, _ := startServer(t, WithToken("s3cret"), WithAuthPenalty(time.Minute, time.Minute), logOpt)
	if _, err := NewClientIO(addr, WithToken("guess")); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("wrong token: %v, want ErrAuthFailed", err)
	}
	// Barred now, even with the right token.
	if _, err := NewClientIO(addr, WithToken("s3cret")); !errors.Is(err, ErrRefused) {
		t.Fatalf("right token from a barred host: %v, want ErrRefused", err)
	}
	for i := range 20 {
		p := dialFrom(t, "127.0.0.1", addr)
		p.send(actionHello, []byte(fmt.Sprintf(`{"v":1,"token":"guess%d"}`, i)), true)
		p.expectRefused(refuseThrottled)
	}
	// Another host is not barred.
	p := dialFrom(t, "127.0.0.2", addr)
	p.send(actionHello, []byte(`{"v":1,"token":"s3cret"}`), true)
	p.expect(actionWelcome)
	p.barrier()
	if srv.Refused() < 21 {
		t.Fatalf("Refused() = %d, want ≥ 21", srv.Refused())
	}
	if n := strings.Count(logs.String(), "authentication failed"); n != 1 {
		t.Fatalf("%d log lines about failed authentication, want 1:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "connection refused"); n != 1 {
		t.Fatalf("%d log lines about refused connections, want 1", n)
	}
}

// TestWaitForRoomBehindSlowFrame: a frame waiting for room in a write queue that is
// full behind a large frame still leaving over a slow link waits as long as that frame
// makes progress (before: it failed with ErrTimeout after the write timeout, however
// steadily the link was moving). Three 3 MB messages leave over a 2 MB/s link with a
// 1 s write timeout and a 1 MiB write queue: the third waits about 1.5 s for room.
func TestWaitForRoomBehindSlowFrame(t *testing.T) {
	leakcheck.Check(t)
	opts := []Option{WithWriteTimeout(time.Second), WithHeartbeat(100*time.Millisecond, 2*time.Second), compressLocal()}
	_, addr, conns := startServer(t, opts...)
	proxy, err := faultproxy.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	smallBuffers := func(ctx context.Context, a string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", a)
		if err == nil {
			_ = nc.(*net.TCPConn).SetWriteBuffer(64 << 10) // queue in banio, not the kernel
		}
		return nc, err
	}
	c := dialClient(t, proxy.Addr(), append(opts, WithDialer(smallBuffers), WithMaxPendingBytes(1<<20), WithReconnectBackoff(stopAfter(0)))...)
	sc := recv(t, conns, 5*time.Second, "server conn")
	sc.Listen("sink", func(m *IOMsgRaw) {
		key, payload, _ := bytes.Cut(m.Data, []byte{'|'})
		_ = sc.SendWaitRes(string(key), strconv.Itoa(len(payload)))
	})
	mustRoundTrip(t, c, "before")
	proxy.SetRate(2 << 20)

	payload := make([]byte, 3<<20)
	_, _ = rand.NewChaCha8([32]byte{2}).Read(payload)
	concurrently(t, 3, func(int) error {
		key := c.SetWait("", 1)
		if err := c.Write(&IOMsgRaw{Action: "sink", Data: append([]byte(key+"|"), payload...)}); err != nil {
			c.CloseWaitChan(key)
			return err
		}
		got, err := c.WaitResult(context.Background(), key, 30*time.Second)
		if err == nil && string(got) != strconv.Itoa(len(payload)) {
			err = fmt.Errorf("the server got %s bytes, want %d", got, len(payload))
		}
		return err
	})
}

// TestPeerFrameLimitFromHandshake: each side learns the largest frame the other accepts
// and fails a larger send with ErrFrameTooLarge, instead of sending it and being cut by
// the peer (before: a result above the master's limit disconnected its worker, and the
// job was retried as a lost worker).
func TestPeerFrameLimitFromHandshake(t *testing.T) {
	leakcheck.Check(t)
	big := make([]byte, 48<<10)
	_, _ = rand.NewChaCha8([32]byte{3}).Read(big) // incompressible
	for _, tc := range []struct {
		name                string
		server, client      int // frame limits
		clientSends, answer bool
	}{
		{"client to a smaller server", 32 << 10, 64 << 10, true, false},
		{"server to a smaller client", 64 << 10, 32 << 10, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr, conns := startServer(t, WithMaxFrameSize(tc.server), compressLocal())
			c := dialClient(t, addr, WithMaxFrameSize(tc.client), compressLocal())
			sc := recv(t, conns, 5*time.Second, "server conn")
			answered := make(chan error, 1)
			sc.Listen("big-answer", func(m *IOMsgRaw) { answered <- sc.SendWaitRes(string(m.Data), big) })
			mustRoundTrip(t, c, "handshake done")
			if tc.clientSends {
				if err := c.WriteMsg(&IOMsg{Action: "echo", Data: big}); !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("client send over the server's limit: %v, want ErrFrameTooLarge", err)
				}
			}
			if tc.answer {
				key := c.SetWait("", 1)
				if err := c.WriteMsg(&IOMsg{Action: "big-answer", Data: key}); err != nil {
					t.Fatal(err)
				}
				if err := recv(t, answered, 5*time.Second, "server answer"); !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("server send over the client's limit: %v, want ErrFrameTooLarge", err)
				}
				c.CloseWaitChan(key)
			}
			mustRoundTrip(t, c, "both ends still connected")
			if sc.IsClosed() {
				t.Fatalf("server conn closed: %v", sc.Err())
			}
		})
	}
}

// TestReadMsgRefusesUnauthenticated: a caller that drives a server-side connection with
// ReadMsg gets the same gate as the read loop: before the token, an action other than
// the hello is refused without being inflated, and the connection is closed (before
// the gate sat in the read loop alone, and ReadMsg inflated and returned the message).
func TestReadMsgRefusesUnauthenticated(t *testing.T) {
	leakcheck.Check(t)
	srv := newServer(WithToken("s3cret"), WithAuthPenalty(0, 0))
	defer srv.Close()
	a, b := net.Pipe()
	defer b.Close()
	c := srv.WrapConn(a)
	bomb := zlibOf(t, make([]byte, 12<<20))
	go func() { _, _ = b.Write(appendFrame(nil, "echo", bomb, true)) }()
	var err error
	used := allocatedDuring(func() { _, err = c.ReadMsg() })
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("ReadMsg before the token: %v, want ErrAuthFailed", err)
	}
	if !c.IsClosed() {
		t.Fatal("connection left open")
	}
	if used > 4<<20 {
		t.Fatalf("ReadMsg allocated %d MB for a stranger's bomb", used>>20)
	}
}
