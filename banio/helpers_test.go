package banio

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Shared test helpers: servers and clients on 127.0.0.1:0 with cleanup, a reference
// BanIO codec built only from the standard library the way banbot reads and writes,
// raw "banbot-like" peers, and a net.Conn that records what it carries.

var logTests = flag.Bool("banio.log", false, "print banio's logs during tests")

// testLogger returns a logger that prints to stderr with -banio.log, else nil (the
// package default, which discards).
func testLogger() *slog.Logger {
	if !*logTests {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// logOpts prepends the test logger option to opts.
func logOpts(opts []Option) []Option {
	if l := testLogger(); l != nil {
		return append([]Option{WithLogger(l)}, opts...)
	}
	return opts
}

// serve starts srv on a fresh 127.0.0.1:0 listener and closes it when the test ends.
func serve(t testing.TB, srv *ServerIO) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, srv, ln)
}

// serveOn serves srv on ln until the test ends.
func serveOn(t testing.TB, srv *ServerIO, ln net.Listener) string {
	t.Helper()
	addr := ln.Addr().String()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return addr
}

// newServer makes a server with test logging.
func newServer(opts ...Option) *ServerIO {
	return NewBanServer("127.0.0.1:0", "test", logOpts(opts)...)
}

// startServer makes and serves a server whose connections answer "echo"; conns
// receives every accepted connection.
func startServer(t testing.TB, opts ...Option) (srv *ServerIO, addr string, conns chan *BanConn) {
	t.Helper()
	srv = newServer(opts...)
	conns = make(chan *BanConn, 64)
	srv.InitConn = func(c *BanConn) {
		echoHandler(c)
		select {
		case conns <- c:
		default:
		}
	}
	return srv, serve(t, srv), conns
}

// newClient dials addr; run starts its read loop.
func newClient(t testing.TB, addr string, opts ...Option) *ClientIO {
	t.Helper()
	c, err := NewClientIO(addr, logOpts(opts)...)
	if err != nil {
		t.Fatalf("NewClientIO: %v", err)
	}
	return c
}

// run starts c's read loop and closes c when the test ends.
func run(t testing.TB, c *ClientIO) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.RunForever() }()
	t.Cleanup(func() {
		_ = c.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ClientIO.RunForever returned %v after Close", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("ClientIO.RunForever did not return after Close")
		}
	})
}

// dialClient is newClient + run.
func dialClient(t testing.TB, addr string, opts ...Option) *ClientIO {
	t.Helper()
	c := newClient(t, addr, opts...)
	run(t, c)
	return c
}

// recv waits for a value on ch, failing the test after d.
func recv[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
		var zero T
		return zero
	}
}

// none fails the test if ch holds a value: something that must not have happened did.
func none[T any](t testing.TB, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal(what)
	default:
	}
}

// concurrently runs fn(0) … fn(n-1) on n goroutines and fails the test with the first
// error any of them returns.
func concurrently(t testing.TB, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// waitUntil polls cond, for the few states that no event announces (counters).
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// echoServer answers action "echo" with SendWaitRes(key, data), where the message's
// Data is "<key>|<payload>".
func echoHandler(c *BanConn) {
	c.Listen("echo", func(m *IOMsgRaw) {
		key, payload, _ := bytes.Cut(m.Data, []byte{'|'})
		_ = c.SendWaitRes(string(key), payload)
	})
}

// roundTrip sends payload to the echo handler and waits for it to come back.
func roundTrip(c IBanConn, payload []byte, timeout time.Duration) ([]byte, error) {
	key := c.SetWait("", 1)
	data := make([]byte, 0, len(key)+1+len(payload))
	data = append(append(append(data, key...), '|'), payload...)
	if err := c.WriteMsg(&IOMsg{Action: "echo", Data: data}); err != nil {
		c.CloseWaitChan(key)
		return nil, err
	}
	return c.WaitResult(context.Background(), key, timeout)
}

// mustRoundTrip fails the test unless an echo round trip works.
func mustRoundTrip(t testing.TB, c IBanConn, payload string) {
	t.Helper()
	got, err := roundTrip(c, []byte(payload), 10*time.Second)
	if err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if string(got) != payload {
		t.Fatalf("round trip returned %q, want %q", got, payload)
	}
}

// constantBackoff makes reconnects quick in tests.
func constantBackoff(d time.Duration) Option {
	return WithReconnectBackoff(func() backoff.BackOff { return backoff.NewConstantBackOff(d) })
}

// stopAfter is a reconnect policy that gives up after n quick retries.
func stopAfter(n uint64) func() backoff.BackOff {
	return func() backoff.BackOff { return backoff.WithMaxRetries(backoff.NewConstantBackOff(time.Millisecond), n) }
}

// ---- The reference codec: standard library only, the way banbot does it. ----

// refMsg is banbot's IOMsgRaw as gob carries it. gob matches struct fields by name, so
// this type decodes banbot's frames whatever the struct is called.
type refMsg struct {
	Action    string
	Data      []byte
	NoEncrypt bool
}

// refKey hex-decodes a test key ("" → nil).
func refKey(t testing.TB, keyHex string) []byte {
	t.Helper()
	if keyHex == "" {
		return nil
	}
	k, err := hex.DecodeString(keyHex)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// refGCM builds AES-GCM for key.
func refGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// refReadFrame reads one frame the way banbot's ReadMsg does: length, body, a fresh gob
// decoder, then (if Data is present) AES-GCM open when key is set and NoEncrypt is false,
// then zlib inflate. It returns the message with Data decoded.
func refReadFrame(r io.Reader, key []byte) (refMsg, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return refMsg{}, err
	}
	body := make([]byte, binary.LittleEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return refMsg{}, err
	}
	return refDecodeBody(body, key)
}

// refDecodeBody decodes one frame body (see refReadFrame).
func refDecodeBody(body []byte, key []byte) (refMsg, error) {
	var m refMsg
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(&m); err != nil {
		return m, fmt.Errorf("gob: %w", err)
	}
	if len(m.Data) == 0 {
		m.Data = nil
		return m, nil
	}
	data := m.Data
	if key != nil && !m.NoEncrypt {
		aead, err := refGCM(key)
		if err != nil {
			return m, err
		}
		if len(data) < 12 {
			return m, errors.New("ciphertext too short")
		}
		if data, err = aead.Open(nil, data[:12], data[12:], nil); err != nil {
			return m, fmt.Errorf("decrypt: %w", err)
		}
	}
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return m, fmt.Errorf("zlib: %w", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return m, fmt.Errorf("zlib: %w", err)
	}
	m.Data = out
	if len(m.Data) == 0 {
		m.Data = nil
	}
	return m, nil
}

// refEncodeFrame encodes one frame the way banbot's WriteMsg does: data (already
// marshalled; nil = absent) → zlib at the default level → AES-GCM with a random nonce
// when key is set and noEncrypt is false → gob with a fresh encoder → length header.
func refEncodeFrame(t testing.TB, action string, data []byte, noEncrypt bool, key []byte) []byte {
	t.Helper()
	frame, err := refEncode(action, data, noEncrypt, key)
	if err != nil {
		t.Fatal(err)
	}
	return frame
}

func refEncode(action string, data []byte, noEncrypt bool, key []byte) ([]byte, error) {
	msg := IOMsgRaw{Action: action, NoEncrypt: noEncrypt}
	if data != nil {
		var zb bytes.Buffer
		zw := zlib.NewWriter(&zb)
		if _, err := zw.Write(data); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		msg.Data = zb.Bytes()
		if key != nil && !noEncrypt {
			aead, err := refGCM(key)
			if err != nil {
				return nil, err
			}
			nonce := make([]byte, 12)
			_, _ = rand.Read(nonce)
			msg.Data = aead.Seal(nonce, nonce, msg.Data, nil)
		}
	}
	var body bytes.Buffer
	if err := gob.NewEncoder(&body).Encode(&msg); err != nil {
		return nil, err
	}
	frame := binary.LittleEndian.AppendUint32(nil, uint32(body.Len()))
	return append(frame, body.Bytes()...), nil
}

// init makes IOMsgRaw the first type this test binary gob-encodes, so that gob gives
// it type id 64 as in a fresh banbot process (the golden vectors were made that way).
func init() {
	_ = gob.NewEncoder(io.Discard).Encode(&IOMsgRaw{})
}

// ---- Raw peers ----

// rawPeer is a bare TCP connection speaking BanIO through the reference codec: what a
// banbot process (or an attacker) looks like to banio.
type rawPeer struct {
	t        testing.TB
	nc       net.Conn
	key      []byte
	barriers int
}

func dialRaw(t testing.TB, addr string, key []byte) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawPeer{t: t, nc: nc, key: key}
}

// send writes a reference-encoded frame.
func (p *rawPeer) send(action string, data []byte, noEncrypt bool) {
	p.t.Helper()
	p.write(refEncodeFrame(p.t, action, data, noEncrypt, p.key))
}

// write writes raw bytes.
func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatalf("raw write: %v", err)
	}
}

// read reads one frame with the reference reader, within d.
func (p *rawPeer) read(d time.Duration) (refMsg, error) {
	_ = p.nc.SetReadDeadline(time.Now().Add(d))
	defer p.nc.SetReadDeadline(time.Time{})
	return refReadFrame(p.nc, p.key)
}

// expect reads frames until one with action arrives (skipping others, e.g. __welcome__).
func (p *rawPeer) expect(action string) refMsg {
	p.t.Helper()
	for {
		m, err := p.read(10 * time.Second)
		if err != nil {
			p.t.Fatalf("raw read waiting for %q: %v", action, err)
		}
		if m.Action == action {
			return m
		}
	}
}

// ping sends a banbot ping and waits for its pong: proof that the server still serves
// this connection and has handled everything sent before it.
func (p *rawPeer) ping(n int) {
	p.t.Helper()
	p.send("ping", []byte(fmt.Sprint(n)), true)
	m := p.expect("pong")
	if want := fmt.Sprint(n + 1); string(m.Data) != want || !m.NoEncrypt {
		p.t.Fatalf("pong = %q NoEncrypt=%v, want %q NoEncrypt=true", m.Data, m.NoEncrypt, want)
	}
}

// barrier sends an onGetVal and waits for its answer. The server handles it on the
// connection's handler goroutine, in order after every message sent before it, so once
// it is answered they have all been handled. (A ping is no barrier: pings are answered
// on the read loop, ahead of messages still queued for handlers.)
func (p *rawPeer) barrier() {
	p.t.Helper()
	p.barriers++
	key := fmt.Sprintf("barrier-%d", p.barriers)
	p.send("onGetVal", []byte(strconv.Quote(key)), true)
	p.expect(resPrefix + key)
}

// expectClosed waits for the server to close the connection (EOF or reset) without
// sending any frame.
func (p *rawPeer) expectClosed(d time.Duration) {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1024)
	n, err := p.nc.Read(buf)
	var ne net.Error
	switch {
	case n > 0:
		p.t.Fatalf("got %d bytes, want the connection closed", n)
	case errors.As(err, &ne) && ne.Timeout():
		p.t.Fatalf("connection still open after %v", d)
	}
}

// ---- Recording ----

// recConn records the bytes it carries in each direction.
type recConn struct {
	net.Conn
	// wmu is held across a write and its recording, so that streams, called once the
	// peer has answered what a write carried, sees that write (the writer goroutine
	// may still be between the two when the answer arrives).
	wmu         sync.Mutex
	mu          sync.Mutex
	wrote, read bytes.Buffer
}

func (r *recConn) Write(p []byte) (int, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	n, err := r.Conn.Write(p)
	r.mu.Lock()
	r.wrote.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r *recConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.read.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

// streams returns copies of what was written and read so far.
func (r *recConn) streams() (wrote, read []byte) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.wrote.Bytes()), bytes.Clone(r.read.Bytes())
}

// recordingDialer dials TCP and records every connection it makes.
type recordingDialer struct {
	mu    sync.Mutex
	conns []*recConn
}

func (d *recordingDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	rc := &recConn{Conn: nc}
	d.mu.Lock()
	d.conns = append(d.conns, rc)
	d.mu.Unlock()
	return rc, nil
}

func (d *recordingDialer) last() *recConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns[len(d.conns)-1]
}

// splitFrames cuts a recorded stream into frame bodies (a trailing partial frame is
// ignored) and decodes each with gob, leaving Data as it was on the wire.
func splitFrames(t testing.TB, stream []byte) []refMsg {
	t.Helper()
	var out []refMsg
	for len(stream) >= 4 {
		n := int(binary.LittleEndian.Uint32(stream))
		if len(stream) < 4+n {
			break
		}
		var m refMsg
		if err := gob.NewDecoder(bytes.NewReader(stream[4 : 4+n])).Decode(&m); err != nil {
			t.Fatalf("recorded frame %d: gob: %v", len(out), err)
		}
		out = append(out, m)
		stream = stream[4+n:]
	}
	return out
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) contains(s string) bool { return strings.Contains(b.String(), s) }

// captureLogs returns an option logging into a buffer the test can search.
func captureLogs() (Option, *syncBuffer) {
	var b syncBuffer
	return WithLogger(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))), &b
}
