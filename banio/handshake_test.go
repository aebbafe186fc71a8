package banio

import (
	"bytes"
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

// compressible is a payload s2 shrinks, so that the fast codec picks its s2 tag.
var compressible = []byte(strings.Repeat("line 0001 the quick brown fox jumps over the lazy dog\n", 80))

// isZlib reports whether wire Data starts like a zlib stream (CM = 8 in the low nibble).
func isZlib(d []byte) bool {
	return len(d) >= 2 && d[0]&0x0f == 8 && (uint16(d[0])<<8|uint16(d[1]))%31 == 0
}

// compressLocal makes a connection use s2 even though its peer is on this host, as it
// would across a network.
func compressLocal() Option { return func(c *config) { c.compressLocal = true } }

// TestHandshakeFastCodec: two banfleet peers negotiate the fast codec. Both sides
// switch, and every payload after the welcome is tag-prefixed (raw 0x00 or s2 0x01)
// instead of a zlib stream.
func TestHandshakeFastCodec(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t, compressLocal())
	var rec recordingDialer
	c := dialClient(t, addr, WithDialer(rec.dial), compressLocal())
	sc := recv(t, conns, 5*time.Second, "server conn")

	mustRoundTrip(t, c, "first") // the welcome precedes this reply on the stream
	if !c.fastSend.Load() || !c.fastRecv.Load() {
		t.Fatalf("client fastSend=%v fastRecv=%v, want both", c.fastSend.Load(), c.fastRecv.Load())
	}
	if !sc.fastSend.Load() || !sc.fastRecv.Load() {
		t.Fatalf("server fastSend=%v fastRecv=%v, want both", sc.fastSend.Load(), sc.fastRecv.Load())
	}
	wroteBefore, _ := rec.last().streams()
	mustRoundTrip(t, c, "small")
	mustRoundTrip(t, c, string(compressible))

	wrote, read := rec.last().streams()
	// Client → server: the hello is zlib (the server may be banbot); what the client sent
	// after reading the welcome is tagged.
	out := splitFrames(t, wrote)
	if out[0].Action != actionHello || !isZlib(out[0].Data) {
		t.Fatalf("first client frame %q is not a zlib hello", out[0].Action)
	}
	checkTagged(t, "client", splitFrames(t, wrote[len(wroteBefore):]), 2)
	// Server → client: the welcome is zlib, everything after it is tagged.
	in := splitFrames(t, read)
	if in[0].Action != actionWelcome || !isZlib(in[0].Data) {
		t.Fatalf("first server frame %q is not a zlib welcome", in[0].Action)
	}
	var w welcomeMsg
	if m, err := refDecodeBody(mustBody(t, read), nil); err != nil || json.Unmarshal(m.Data, &w) != nil || w.Codec != codecFast {
		t.Fatalf("welcome %+v, err %v", w, err)
	}
	checkTagged(t, "server", in[1:], 3)
}

// TestLoopbackPeersSendRaw: peers on one host send even large, compressible payloads
// raw: a memory copy is cheaper than compressing and decompressing.
func TestLoopbackPeersSendRaw(t *testing.T) {
	leakcheck.Check(t)
	_, addr, _ := startServer(t)
	var rec recordingDialer
	c := dialClient(t, addr, WithDialer(rec.dial))
	mustRoundTrip(t, c, "handshake done")
	before, _ := rec.last().streams()
	mustRoundTrip(t, c, string(compressible))
	wrote, read := rec.last().streams()
	for _, f := range append(splitFrames(t, wrote[len(before):]), splitFrames(t, read)...) {
		if len(f.Data) > len(compressible) && f.Data[0] != tagRaw {
			t.Fatalf("frame %q: %d bytes with tag %#x, want raw", f.Action, len(f.Data), f.Data[0])
		}
	}
	var big int
	for _, f := range splitFrames(t, read) {
		if len(f.Data) > len(compressible) {
			big++
		}
	}
	if big == 0 {
		t.Fatal("the echoed payload did not come back raw")
	}
}

// mustBody returns the first frame body of a stream.
func mustBody(t testing.TB, stream []byte) []byte {
	t.Helper()
	n := int(stream[0]) | int(stream[1])<<8 | int(stream[2])<<16 | int(stream[3])<<24
	return stream[4 : 4+n]
}

// checkTagged asserts that every payload in frames uses the fast codec's tags, that
// there are at least want of them, and that both tags occur.
func checkTagged(t *testing.T, who string, frames []refMsg, want int) {
	t.Helper()
	var raw, s2 int
	for _, m := range frames {
		if len(m.Data) == 0 {
			continue
		}
		switch m.Data[0] {
		case tagRaw:
			raw++
		case tagS2:
			s2++
		default:
			t.Errorf("%s frame %q after the handshake starts with %#x, want a fast-codec tag", who, m.Action, m.Data[0])
		}
	}
	if raw+s2 < want || raw == 0 || s2 == 0 {
		t.Errorf("%s sent %d raw and %d s2 payloads after the handshake, want ≥%d with both tags", who, raw, s2, want)
	}
}

// rawServer is a banbot-like server: it accepts connections, decodes every frame with
// the standard-library reference reader, never answers __hello__, and lets the test
// write reference-encoded frames.
type rawServer struct {
	t      testing.TB
	ln     net.Listener
	frames chan refMsg
	conns  chan net.Conn
	wg     sync.WaitGroup
}

func startRawServer(t testing.TB, key []byte, read bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{t: t, ln: ln, frames: make(chan refMsg, 1024), conns: make(chan net.Conn, 16)}
	var mu sync.Mutex
	var open []net.Conn
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, nc)
			mu.Unlock()
			select {
			case s.conns <- nc:
			default: // nobody looks any more
			}
			if !read {
				continue
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				for {
					m, err := refReadFrame(nc, key)
					if err != nil {
						if !errors.Is(err, net.ErrClosed) && !isEOF(err) {
							s.frames <- refMsg{Action: "!error", Data: []byte(err.Error())}
						}
						return
					}
					s.frames <- m
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, nc := range open {
			_ = nc.Close()
		}
		mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func isEOF(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset"))
}

func (s *rawServer) addr() string { return s.ln.Addr().String() }

// next returns the next frame the raw server decoded.
func (s *rawServer) next() refMsg {
	s.t.Helper()
	m := recv(s.t, s.frames, 10*time.Second, "a frame at the raw server")
	if m.Action == "!error" {
		s.t.Fatalf("stdlib reader failed on a banio frame: %s", m.Data)
	}
	return m
}

// TestHandshakeBanbotServer: against a server that never answers the hello, a banfleet
// client keeps sending zlib frames that a standard-library reader decodes, answers the
// server's ping banbot's way and takes its __res__ replies.
func TestHandshakeBanbotServer(t *testing.T) {
	leakcheck.Check(t)
	rs := startRawServer(t, nil, true)
	c := dialClient(t, rs.addr())
	nc := recv(t, rs.conns, 5*time.Second, "connection")

	if m := rs.next(); m.Action != actionHello {
		t.Fatalf("first frame %q, want the hello", m.Action)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB, compressible
	for _, p := range [][]byte{[]byte("x"), compressible, big} {
		if err := c.WriteMsg(&IOMsg{Action: "data", Data: p}); err != nil {
			t.Fatal(err)
		}
		if m := rs.next(); m.Action != "data" || !bytes.Equal(m.Data, p) {
			t.Fatalf("raw server got %q with %d bytes, want data with %d", m.Action, len(m.Data), len(p))
		}
	}
	if err := c.WriteMsg(&IOMsg{Action: "nothing"}); err != nil {
		t.Fatal(err)
	}
	if m := rs.next(); m.Action != "nothing" || m.Data != nil {
		t.Fatalf("nil Data arrived as %q %q", m.Action, m.Data)
	}

	// The banbot server pings; the client answers value+1, NoEncrypt, as zlib.
	if _, err := nc.Write(refEncodeFrame(t, "ping", []byte("41"), true, nil)); err != nil {
		t.Fatal(err)
	}
	if m := rs.next(); m.Action != "pong" || string(m.Data) != "42" || !m.NoEncrypt {
		t.Fatalf("pong = %q %q %v", m.Action, m.Data, m.NoEncrypt)
	}
	// A reply to a client wait.
	key := c.SetWait("", 1)
	if _, err := nc.Write(refEncodeFrame(t, resPrefix+key, []byte("answer"), false, nil)); err != nil {
		t.Fatal(err)
	}
	if got, err := c.WaitResult(context.Background(), key, 5*time.Second); err != nil || string(got) != "answer" {
		t.Fatalf("WaitResult = %q, %v", got, err)
	}
	if c.fastSend.Load() {
		t.Fatal("client switched to the fast codec without a welcome")
	}
}

// TestHandshakeBanbotClient: a banbot-like client (reference encoder, no hello) uses a
// ServerIO: subscribe, ping → pong, onGetVal with the key raw and JSON-quoted, onSetVal
// with an expiry (which crashes banbot's own server), and receives broadcasts as zlib.
func TestHandshakeBanbotClient(t *testing.T) {
	leakcheck.Check(t)
	srv, addr, conns := startServer(t)
	p := dialRaw(t, addr, nil)
	p.send("subscribe", []byte(`["topic","other"]`), false)
	p.ping(7)
	p.barrier() // the ping is answered on the read loop, maybe before the subscribe
	sc := recv(t, conns, 5*time.Second, "server conn")
	if _, ok := sc.GetData("topic"); !ok {
		t.Fatal("subscription not recorded")
	}

	srv.SetVal(&KeyValExpire{Key: "lock_k1", Val: "v1"})
	p.send("onGetVal", []byte("lock_k1"), false) // raw, as banbot's ClientIO sends it
	if m := p.expect(resPrefix + "lock_k1"); string(m.Data) != "v1" {
		t.Fatalf("raw-key onGetVal answered %q", m.Data)
	}
	p.send("onGetVal", []byte(`"lock_k1"`), false) // JSON, as banbot's server expects
	if m := p.expect(resPrefix + "lock_k1"); string(m.Data) != "v1" {
		t.Fatalf("JSON-key onGetVal answered %q", m.Data)
	}
	p.send("onGetVal", []byte(`"missing"`), false)
	if m := p.expect(resPrefix + "missing"); m.Data != nil {
		t.Fatalf("miss answered %q, want empty", m.Data)
	}

	p.send("onSetVal", []byte(`{"Key":"k2","Val":"v2","expireSecs":30}`), false)
	p.send("onGetVal", []byte(`"k2"`), false)
	if m := p.expect(resPrefix + "k2"); string(m.Data) != "v2" {
		t.Fatalf("value set with expiry read back as %q", m.Data)
	}
	srv.kv.mu.Lock()
	e := srv.kv.m["k2"]
	srv.kv.mu.Unlock()
	if e.expires == 0 || time.Until(time.Unix(0, e.expires)) > 30*time.Second {
		t.Fatalf("expiry not recorded: %+v", e)
	}

	if err := srv.Broadcast(&IOMsg{Action: "topic", Data: map[string]int{"n": 1}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Broadcast(&IOMsg{Action: "unsubscribed", Data: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Broadcast(&IOMsg{Action: "topic", Data: compressible}); err != nil {
		t.Fatal(err)
	}
	if m := p.expect("topic"); string(m.Data) != `{"n":1}` {
		t.Fatalf("broadcast %q", m.Data)
	}
	m, err := p.read(5 * time.Second) // reference reader: zlib; and not the unsubscribed action
	if err != nil || m.Action != "topic" || !bytes.Equal(m.Data, compressible) {
		t.Fatalf("second broadcast: %q %v", m.Action, err)
	}
	if sc.fastSend.Load() || sc.fastRecv.Load() {
		t.Fatal("server switched codec for a client that never said hello")
	}
}

// TestHandshakeCodecZlib: WithCodec(CodecZlib) on either side keeps every payload a
// zlib stream.
func TestHandshakeCodecZlib(t *testing.T) {
	leakcheck.Check(t)
	for _, side := range []string{"client", "server"} {
		t.Run(side, func(t *testing.T) {
			var sopts, copts []Option
			if side == "server" {
				sopts = append(sopts, WithCodec(CodecZlib))
			} else {
				copts = append(copts, WithCodec(CodecZlib))
			}
			_, addr, conns := startServer(t, sopts...)
			var rec recordingDialer
			c := dialClient(t, addr, append(copts, WithDialer(rec.dial))...)
			sc := recv(t, conns, 5*time.Second, "server conn")
			for _, p := range []string{"a", "first", string(compressible)} {
				mustRoundTrip(t, c, p)
			}
			if c.fastSend.Load() || sc.fastSend.Load() || sc.fastRecv.Load() {
				t.Fatalf("negotiated anyway: client send %v, server send %v recv %v", c.fastSend.Load(), sc.fastSend.Load(), sc.fastRecv.Load())
			}
			wrote, read := rec.last().streams()
			for _, m := range append(splitFrames(t, wrote), splitFrames(t, read)...) {
				if len(m.Data) > 0 && !isZlib(m.Data) {
					t.Errorf("frame %q carries a non-zlib payload %#x", m.Action, m.Data[:1])
				}
			}
		})
	}
}
