package banio

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// Fuzz targets for what a peer reaches on a live connection: the handshake on both
// sides (onHello, onWelcome), the built-in JSON actions, and a whole fuzzed frame stream
// fed to a real connection's read loop over net.Pipe.

// More known defects (see fuzz_decoders_test.go for how the gates work).
const (
	// knownExpiryOverflow: the server computes expiries as now + n·unit in int64
	// nanoseconds without a bound, so onSetVal's expireSecs ≳ 7.5e9 (about 237
	// years) and __lock__'s ttl_ms ≳ 7.5e12 overflow: the value or lock expires at
	// once (or at a wrapped time). A granted lock is then free for anyone.
	knownExpiryOverflow = false
	// knownGetValNullKey: docs/protocol.md §7 says an onGetVal Data that parses as a
	// JSON string is the quoted key and anything else the raw key; the handler
	// unmarshals into a string, which also accepts `null` (key "" instead of "null").
	knownGetValNullKey = false
)

// peerSink collects what a connection writes to the other end of its pipe.
type peerSink struct {
	nc   net.Conn
	done chan struct{}
	buf  bytes.Buffer
}

func newPeerSink(nc net.Conn) *peerSink {
	p := &peerSink{nc: nc, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_, _ = io.Copy(&p.buf, nc)
	}()
	return p
}

// wait returns everything written once the connection's end has been closed.
func (p *peerSink) wait(t testing.TB) []byte {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was closed but its socket still delivers")
	}
	_ = p.nc.Close()
	return p.buf.Bytes()
}

// frames decodes what was written with the reference (banbot) reader.
func (p *peerSink) frames(t testing.TB) []refMsg {
	t.Helper()
	r := bytes.NewReader(p.wait(t))
	var out []refMsg
	for r.Len() > 0 {
		m, err := refReadFrame(r, nil)
		if err != nil {
			t.Fatalf("frame %d written by the connection: %v", len(out), err)
		}
		out = append(out, m)
	}
	return out
}

const fuzzToken = "fuzz-token"

// FuzzHello: onHello on a server-side connection. Undecodable JSON changes nothing and
// is not answered; a wrong token (when one is set) is answered with an error welcome
// and closes the connection; anything else authenticates and is welcomed with the
// fast codec exactly when it was offered and allowed.
func FuzzHello(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"codecs":["s2"],"token":"fuzz-token"}`, `{"v":1,"codecs":["s2"]}`, `{"v":1}`,
		`{"v":1,"token":"wrong"}`, `{"v":1,"codecs":"s2"}`, `{"v":1,"codecs":["zlib","s2","s2"]}`,
		`{"Token":"fuzz-token","CODECS":["s2"]}`, `{"token":"fuzz\u002dtoken"}`, `{"token":"fuzz-token","token":"x"}`,
		`{"v":-1e9,"codecs":[null]}`, `{"token":null}`, `null`, `[]`, `"s2"`, ``, `{`, "{\"token\":\"fuzz-token\x00\"}",
	} {
		for mode := range uint8(4) {
			addSeed(f, []byte(s), mode)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		var opts []Option
		token, zlibOnly := "", mode&2 != 0
		if mode&1 != 0 {
			token = fuzzToken
			opts = append(opts, WithToken(token))
		}
		if zlibOnly {
			opts = append(opts, WithCodec(CodecZlib))
		}
		srv := NewBanServer("", "fuzz", opts...)
		a, b := net.Pipe()
		peer := newPeerSink(b)
		c := srv.WrapConn(a)
		authedBefore := c.authed.Load()
		c.onHello(&IOMsgRaw{Action: actionHello, Data: data})
		closed, authed, fastRecv, fastSend := c.closing(), c.authed.Load(), c.fastRecv.Load(), c.fastSend.Load()
		_ = c.Close()
		frames := peer.frames(t)
		_ = srv.Close()

		var h helloMsg
		if err := json.Unmarshal(data, &h); err != nil {
			// Unauthenticated, a bad hello is a failed authentication: closed.
			if len(frames) != 0 || closed != !authedBefore || authed != authedBefore || fastRecv || fastSend {
				t.Fatalf("bad hello (%v): %d frames, closed %v, authed %v→%v, fast %v/%v", err, len(frames), closed, authedBefore, authed, fastRecv, fastSend)
			}
			return
		}
		if len(frames) != 1 || frames[0].Action != actionWelcome {
			t.Fatalf("hello %q answered with %d frames, want one welcome", data, len(frames))
		}
		var w welcomeMsg
		if err := json.Unmarshal(frames[0].Data, &w); err != nil || w.V != helloVersion {
			t.Fatalf("welcome %q: %v", frames[0].Data, err)
		}
		if token != "" && h.Token != token {
			if w.Error == "" || w.Codec != "" || !closed || authed || fastRecv || fastSend {
				t.Fatalf("wrong token %q: welcome %+v, closed %v, authed %v, fast %v/%v", h.Token, w, closed, authed, fastRecv, fastSend)
			}
			return
		}
		fast := !zlibOnly && slices.Contains(h.Codecs, codecFast)
		want := codecZlib
		if fast {
			want = codecFast
		}
		if w.Error != "" || w.Codec != want || closed || !authed || fastRecv != fast || fastSend != fast {
			t.Fatalf("hello %+v: welcome %+v, closed %v, authed %v, fast %v/%v; want codec %s", h, w, closed, authed, fastRecv, fastSend, want)
		}
	})
}

// FuzzWelcome: onWelcome on a client's connection. Undecodable JSON is ignored; an
// error ends the handshake with ErrAuthFailed and closes; anything else ends it well
// and switches the client to the fast codec only when the server chose it and the
// client allows it. The client answers nothing.
func FuzzWelcome(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"codec":"s2"}`, `{"v":1,"codec":"zlib"}`, `{"v":1,"error":"authentication failed"}`,
		`{"v":1,"codec":"s2","error":"x"}`, `{"v":1,"codec":"S2"}`, `{"CODEC":"s2"}`, `{"error":""}`,
		`{"error":null}`, `{"codec":["s2"]}`, `null`, `[]`, ``, `{"v":1,"codec":"s2"}trailing`,
	} {
		addSeed(f, []byte(s), false)
		addSeed(f, []byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, zlibOnly bool) {
		var opts []Option
		if zlibOnly {
			opts = append(opts, WithCodec(CodecZlib))
		}
		cfg, err := buildConfig(opts)
		if err != nil {
			t.Fatal(err)
		}
		a, b := net.Pipe()
		peer := newPeerSink(b)
		cl := &ClientIO{Addr: "fuzz", subs: make(map[string]struct{}), handshake: make(chan error, 1)}
		cl.BanConn = newConn(&cfg, a)
		cl.client = cl
		cl.onWelcome(&IOMsgRaw{Action: actionWelcome, Data: data})
		var res error
		done := false
		select {
		case res = <-cl.handshake:
			done = true
		default:
		}
		closed, fastSend := cl.closing(), cl.fastSend.Load()
		_ = cl.Close()
		if frames := peer.frames(t); len(frames) != 0 {
			t.Fatalf("the client answered a welcome with %d frames", len(frames))
		}

		var w welcomeMsg
		switch err := json.Unmarshal(data, &w); {
		case err != nil:
			if done || closed || fastSend {
				t.Fatalf("bad welcome (%v): handshake done %v (%v), closed %v, fast %v", err, done, res, closed, fastSend)
			}
		case w.Error != "":
			if !done || !errors.Is(res, ErrAuthFailed) || !closed || fastSend {
				t.Fatalf("refusal %q: handshake %v (%v), closed %v, fast %v", w.Error, done, res, closed, fastSend)
			}
		default:
			fast := w.Codec == codecFast && !zlibOnly
			if !done || res != nil || closed || fastSend != fast {
				t.Fatalf("welcome %+v: handshake %v (%v), closed %v, fast %v, want fast %v", w, done, res, closed, fastSend, fast)
			}
		}
	})
}

// Limits of FuzzBuiltinActions' server: small, so that the fuzzer reaches them.
const (
	fuzzMaxSubs  = 4
	fuzzKVKeys   = 4
	fuzzKVKeyLen = 16
	fuzzKVValLen = 32
)

var builtinActions = []string{actionSubscribe, actionUnsubscribe, actionGetVal, actionSetVal, actionLock, actionUnlock}

// FuzzBuiltinActions runs one built-in JSON action with fuzzed Data on a fresh server
// connection whose store holds "k"="v" and a lock "L" held by token "T", subscribed to
// "a" and "b". It checks each action's documented effect and replies (docs/protocol.md
// §7), read with banbot's reader, and that subscriptions and the store stay within
// their limits.
func FuzzBuiltinActions(f *testing.F) {
	for i, seeds := range [][]string{
		{`["t1","t2"]`, `["a","x","y","z","w"]`, `[]`, `null`, `["a",1]`, `"a"`, `["` + strings.Repeat("t", 100) + `"]`},
		{`["a"]`, `["a","b","c"]`, `null`, `{}`},
		{`"k"`, `k`, `"lock_L"`, `lock_L`, `"missing"`, `null`, ` "k" `, `"\u006b"`, ``, `"`},
		{`{"Key":"n","Val":"v2"}`, `{"Key":"k","Val":""}`, `{"key":"n","val":"x","expireSecs":30}`,
			`{"Key":"n","Val":"x","expireSecs":10000000000}`, `{"Key":"` + strings.Repeat("k", 17) + `","Val":"x"}`,
			`{"Key":"lock_L","Val":"mine"}`, `{"Key":"n","Val":"x","expireSecs":-5}`, `[]`},
		{`{"key":"a","token":"t","ttl_ms":60000,"reply":"r"}`, `{"key":"L","token":"U","ttl_ms":60000,"reply":"r"}`,
			`{"key":"L","token":"T","ttl_ms":60000,"reply":"r"}`, `{"key":"a","token":"t","ttl_ms":9300000000000,"reply":"r"}`,
			`{"key":"a","token":"t","reply":""}`, `{"key":"` + strings.Repeat("a", 12) + `","token":"t","reply":"r"}`, `{"key":"a","token":"t","ttl_ms":-1,"reply":"r"}`},
		{`{"key":"L","token":"T","reply":"r"}`, `{"key":"L","token":"U","reply":"r"}`, `{"key":"a","reply":"r"}`, `{"reply":""}`},
	} {
		for _, s := range seeds {
			addSeed(f, uint8(i), []byte(s))
		}
	}
	// The golden frames' own payloads for these actions.
	for _, g := range goldenFrames(f) {
		if g.key != "" {
			continue
		}
		wm, err := decodeBody(g.frame[4:])
		if err != nil {
			f.Fatal(err)
		}
		if i := slices.Index(builtinActions, wm.Action); i >= 0 {
			data, err := decodePayload(wm.Data, false, DefaultMaxInflatedSize)
			if err != nil {
				f.Fatal(err)
			}
			addSeed(f, uint8(i), data)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		action := builtinActions[int(which)%len(builtinActions)]
		if len(data) == 0 {
			data = nil // as decodeData delivers it
		}
		srv := NewBanServer("", "fuzz", WithLimits(fuzzMaxSubs, 4, fuzzKVKeys, fuzzKVKeyLen, fuzzKVValLen))
		srv.SetVal(&KeyValExpire{Key: "k", Val: "v"})
		if !tryLockForTest(srv, "L", "T", time.Hour) {
			t.Fatal("setup: lock")
		}
		a, b := net.Pipe()
		peer := newPeerSink(b)
		c := srv.WrapConn(a)
		c.subscribe([]string{"a", "b"})
		kvBefore := kvSnapshot(srv)

		c.handlers.Load().lookup(action)(&IOMsgRaw{Action: action, Data: data})

		subs := slices.Sorted(maps.Keys(c.data.m))
		_ = c.Close()
		frames := peer.frames(t)
		kv := kvSnapshot(srv)
		if len(subs) > fuzzMaxSubs || len(kv) > fuzzKVKeys {
			t.Fatalf("limits passed: %d subscriptions, %d keys", len(subs), len(kv))
		}
		for k, v := range kv {
			if len(k) > fuzzKVKeyLen || len(v) > fuzzKVValLen {
				t.Fatalf("store holds a %d-byte key / %d-byte value", len(k), len(v))
			}
		}
		replies := func(n int) {
			t.Helper()
			if len(frames) != n {
				t.Fatalf("%s %q: %d replies, want %d", action, data, len(frames), n)
			}
		}
		unchanged := func() {
			t.Helper()
			if !maps.Equal(kv, kvBefore) {
				t.Fatalf("%s %q changed the store: %v → %v", action, data, kvBefore, kv)
			}
		}

		switch action {
		case actionSubscribe, actionUnsubscribe:
			replies(0)
			unchanged()
			want := map[string]bool{"a": true, "b": true}
			if tags, err := parseTags(data); err == nil {
				for _, tag := range tags {
					if action == actionUnsubscribe {
						delete(want, tag)
					} else if want[tag] || len(want) < fuzzMaxSubs {
						want[tag] = true
					}
				}
			}
			if got := slices.Sorted(maps.Keys(want)); !slices.Equal(subs, got) {
				t.Fatalf("%s %q: subscribed to %q, want %q", action, data, subs, got)
			}
		case actionGetVal:
			replies(1)
			unchanged()
			key := string(data)
			var v any
			if json.Unmarshal(data, &v) == nil {
				if s, ok := v.(string); ok {
					key = s
				}
			}
			if got := strings.TrimPrefix(frames[0].Action, resPrefix); got != key {
				violated(t, knownGetValNullKey && string(bytes.TrimSpace(data)) == "null",
					"onGetVal %q answered key %q, want %q", data, got, key)
				return
			}
			if string(frames[0].Data) != kvBefore[key] {
				t.Fatalf("onGetVal %q = %q, want %q", key, frames[0].Data, kvBefore[key])
			}
		case actionSetVal:
			replies(0)
			var args KeyValExpire
			err := json.Unmarshal(data, &args)
			want := maps.Clone(kvBefore)
			switch {
			case err != nil, len(args.Key) > fuzzKVKeyLen, len(args.Val) > fuzzKVValLen:
			case args.Val == "":
				delete(want, args.Key)
			case len(want) < fuzzKVKeys || want[args.Key] != "":
				want[args.Key] = args.Val
			}
			if !maps.Equal(kv, want) {
				violated(t, knownExpiryOverflow && args.ExpireSecs > 1e9,
					"onSetVal %q: store %v, want %v", data, kv, want)
			}
		case actionLock:
			var r lockReq
			if err := json.Unmarshal(data, &r); err != nil || r.Key == "" || r.Token == "" || r.Reply == "" {
				replies(0)
				unchanged()
				return
			}
			replies(1)
			held := r.Key == "L" && r.Token != "T"
			fits := len(lockPrefix+r.Key) <= fuzzKVKeyLen && len(r.Token) <= fuzzKVValLen
			want := lockBusy
			if fits && !held {
				want = lockOK
			}
			if frames[0].Action != resPrefix+r.Reply || string(frames[0].Data) != want {
				t.Fatalf("lock %+v answered %q %q, want %q", r, frames[0].Action, frames[0].Data, want)
			}
			if want == lockOK && r.TTLMs >= 1000 && tryLockForTest(srv, r.Key, r.Token+"-other", time.Millisecond) {
				violated(t, knownExpiryOverflow && r.TTLMs > 1e12,
					"lock %q granted for %d ms is free for another token at once", r.Key, r.TTLMs)
			}
		case actionUnlock:
			var r lockReq
			if err := json.Unmarshal(data, &r); err != nil || r.Reply == "" {
				replies(0)
				unchanged()
				return
			}
			replies(1)
			owner := r.Key == "L" && r.Token == "T"
			want := "not owner"
			if owner {
				want = lockOK
			}
			if frames[0].Action != resPrefix+r.Reply || string(frames[0].Data) != want {
				t.Fatalf("unlock %+v answered %q %q, want %q", r, frames[0].Action, frames[0].Data, want)
			}
			if _, still := kv[lockPrefix+"L"]; still == owner {
				t.Fatalf("unlock %+v: lock_L still held: %v", r, still)
			}
		}
	})
}

// kvSnapshot returns the store's live (unexpired) entries.
func kvSnapshot(s *ServerIO) map[string]string {
	now := time.Now().UnixNano()
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	out := make(map[string]string, len(s.kv.m))
	for k, e := range s.kv.m {
		if !e.expired(now) {
			out[k] = e.val
		}
	}
	return out
}

// ---- a whole stream ----

// Stream modes of FuzzServerStream.
const (
	streamPlain  = iota // a server without token: banbot's view
	streamAuthed        // a token server, after a valid hello offering s2 (fast codec on)
	streamToken         // a token server; the input must authenticate itself
	streamAES           // an AES server, after a valid encrypted hello
	streamClient        // a client's connection (welcome, results, built-ins)
	streamModes
)

// syncAction marks the end of a fuzzed stream: its handler runs after every handler
// the stream queued.
const syncAction = "__fuzz_sync__"

var syncData = []byte("sync 7f3a9c")

// padToFrame returns how many zero bytes complete the stream's last frame, so that the
// sync frame behind them is read as a frame; false if a header is above maxFrame (the
// connection ends there).
func padToFrame(stream []byte, maxFrame int) (int, bool) {
	for len(stream) > 0 {
		if len(stream) < 4 {
			var hdr [4]byte
			copy(hdr[:], stream)
			n := int(binary.LittleEndian.Uint32(hdr[:]))
			return 4 - len(stream) + n, n <= maxFrame
		}
		n := int(binary.LittleEndian.Uint32(stream))
		if n > maxFrame {
			return 0, false
		}
		if len(stream)-4 < n {
			return n - (len(stream) - 4), true
		}
		stream = stream[4+n:]
	}
	return 0, true
}

// panicLog fails on a handler panic that banio recovered and logged.
type panicLog struct{ buf syncBuffer }

func (p *panicLog) option() Option {
	return WithLogger(slog.New(slog.NewTextHandler(&p.buf, &slog.HandlerOptions{Level: slog.LevelError})))
}

func (p *panicLog) check(t testing.TB) {
	t.Helper()
	if s := p.buf.String(); strings.Contains(s, "panicked") {
		t.Fatalf("a handler panicked: %s", s)
	}
}

// FuzzServerStream feeds a fuzzed frame stream to a real connection's read loop
// (RunForever) over net.Pipe, with its handler and writer goroutines, in several
// configurations (streamModes). It must not panic (on the read loop, or in a handler
// banio recovers), must keep subscriptions and the store within their limits, must run
// no handler for an unauthenticated peer, and its goroutines must all end once the
// connection is closed.
func FuzzServerStream(f *testing.F) {
	stream := readTestdata(f, "stream_4frames.bin")
	for _, g := range goldenFrames(f) {
		mode := uint8(streamPlain)
		if g.key != "" {
			mode = streamAES
		}
		addSeed(f, g.frame, mode)
	}
	hello := func(token string) []byte {
		data, _ := json.Marshal(helloMsg{V: helloVersion, Codecs: []string{codecFast}, Token: token})
		return appendFrame(nil, actionHello, appendZlibStored(nil, data), false)
	}
	frame := func(action string, data string) []byte {
		return appendFrame(nil, action, appendZlibStored(nil, []byte(data)), false)
	}
	raw := func(action string, data string) []byte {
		return appendFrame(nil, action, append([]byte{tagRaw}, data...), false)
	}
	lock := frame(actionLock, `{"key":"a","token":"t","ttl_ms":60000,"reply":"r"}`)
	getval := frame(actionGetVal, `"lock_a"`)
	for mode := range uint8(streamModes) {
		addSeed(f, stream, mode)
		addSeed(f, bytes.Join([][]byte{lock, getval, frame(actionUnlock, `{"key":"a","token":"t","reply":"r"}`)}, nil), mode)
		addSeed(f, bytes.Join([][]byte{frame(actionSubscribe, `["a","b","c","d","e","f"]`), frame(actionUnsubscribe, `["a"]`)}, nil), mode)
		addSeed(f, bytes.Join([][]byte{raw("ping", "41"), appendFrame(nil, "x", appendFast(nil, compressible), false), raw(resPrefix+"k", "v")}, nil), mode)
		addSeed(f, bytes.Join([][]byte{frame(actionSetVal, `{"Key":"n","Val":"v","expireSecs":5}`), frame("unknown", "x")}, nil), mode)
		addSeed(f, readTestdata(f, "zero_length_frame.bin"), mode)
		addSeed(f, []byte{0xff, 0xff, 0xff, 0xff}, mode)
		addSeed(f, lock[:len(lock)-3], mode) // truncated
	}
	for _, body := range fallbackBodies(f) { // bodies only encoding/gob decodes
		addSeed(f, append(frameOf(body), lock...), uint8(streamPlain))
	}
	addSeed(f, bytes.Join([][]byte{hello(fuzzToken), lock}, nil), uint8(streamToken))
	addSeed(f, bytes.Join([][]byte{hello("wrong"), lock}, nil), uint8(streamToken))
	addSeed(f, bytes.Join([][]byte{lock, hello(fuzzToken)}, nil), uint8(streamToken))
	addSeed(f, frame(actionWelcome, `{"v":1,"codec":"s2"}`), uint8(streamClient))
	addSeed(f, frame(actionWelcome, `{"v":1,"error":"no"}`), uint8(streamClient))

	leakcheck.Check(f)
	f.Fuzz(func(t *testing.T, input []byte, mode uint8) {
		mode %= streamModes
		var logs panicLog
		opts := []Option{logs.option(), WithMaxFrameSize(1 << 20), WithMaxInflatedSize(1 << 20),
			WithMaxInboxBytes(1 << 20), WithMaxPendingBytes(1 << 20), WithWriteTimeout(2 * time.Second),
			WithLimits(fuzzMaxSubs, 4, fuzzKVKeys, fuzzKVKeyLen, fuzzKVValLen)}
		var prefix []byte
		switch mode {
		case streamAuthed, streamToken:
			opts = append(opts, WithToken(fuzzToken))
		case streamAES:
			opts = append(opts, WithAESKey(testKey128))
		}
		cfg, err := buildConfig(opts)
		if err != nil {
			t.Fatal(err)
		}
		if mode == streamAuthed || mode == streamAES {
			data, _ := json.Marshal(helloMsg{V: helloVersion, Codecs: []string{codecFast}, Token: cfg.token})
			if prefix, err = encodeFrameWith(nil, &cfg, actionHello, data, nil, true, false, wireZlib); err != nil {
				t.Fatal(err)
			}
		}
		srv := NewBanServer("", "fuzz", opts...)
		defer srv.Close()
		a, b := net.Pipe()
		var c *BanConn
		if mode == streamClient {
			c = newConn(&srv.cfg, a)
			cl := &ClientIO{BanConn: c, Addr: "fuzz", subs: make(map[string]struct{}), handshake: make(chan error, 1)}
			c.client = cl
			c.fastRecv.Store(true)
			c.SetWait("k", 1)
		} else {
			c = srv.WrapConn(a)
		}
		var unauthed sync.Once
		var early string
		c.Listen("", func(m *IOMsgRaw) { // every action without a handler of its own
			if !c.authed.Load() {
				unauthed.Do(func() { early = m.Action })
			}
		})
		synced := make(chan struct{})
		var once sync.Once
		c.Listen(syncAction, func(m *IOMsgRaw) {
			if bytes.Equal(m.Data, syncData) {
				once.Do(func() { close(synced) })
			}
		})
		ran := make(chan error, 1)
		go func() { ran <- c.RunForever() }()
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			_, _ = io.Copy(io.Discard, b)
		}()
		full := append(bytes.Clone(prefix), input...)
		pad, resync := padToFrame(full, cfg.maxFrame)
		if resync {
			full = append(full, make([]byte, pad)...)
			full = appendFrame(full, syncAction, appendZlibStored(nil, syncData), true)
		}
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			_, _ = b.Write(full)
		}()
		if resync {
			select {
			case <-synced:
			case <-c.Done():
				if mode == streamPlain { // nothing but broken framing ends it
					t.Fatalf("a server without token closed a well-framed stream: %v", c.Err())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("mode %d: stream neither handled nor refused within 10 s", mode)
			}
		}
		c.data.mu.RLock()
		subs := len(c.data.m)
		c.data.mu.RUnlock()
		kv := len(kvSnapshot(srv))
		_ = c.Close()
		_ = b.Close()
		for what, ch := range map[string]<-chan struct{}{"writer": wrote, "drainer": drained, "read loop": doneOf(ran)} {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Fatalf("mode %d: the %s did not end after Close", mode, what)
			}
		}
		goroutines := make(chan struct{})
		go func() { c.wg.Wait(); close(goroutines) }()
		select {
		case <-goroutines:
		case <-time.After(10 * time.Second):
			t.Fatalf("mode %d: the connection's handler or writer goroutine outlived Close", mode)
		}
		logs.check(t)
		if early != "" {
			t.Fatalf("mode %d: handler ran for %q before authentication", mode, early)
		}
		if subs > fuzzMaxSubs || kv > fuzzKVKeys {
			t.Fatalf("mode %d: %d subscriptions, %d keys", mode, subs, kv)
		}
	})
}

// doneOf turns a one-result channel into a done channel.
func doneOf[T any](ch <-chan T) <-chan struct{} {
	done := make(chan struct{})
	go func() { <-ch; close(done) }()
	return done
}

// tryLockForTest takes key for token without waiting, as a __lock__ without wait_ms.
func tryLockForTest(srv *ServerIO, key, token string, ttl time.Duration) bool {
	res, _, _ := srv.lock(nil, &lockReq{Key: key, Token: token, TTLMs: max(ttl.Milliseconds(), 1), Reply: "r"}, time.Now())
	return res == lockOK
}
