package banio

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Fuzzing the read path: framing, gob (fast path and fallback), decryption,
// decompression, and the built-in handlers a peer can reach. Seeded with every golden
// frame; the seeds run under plain `go test`.

// streamConn is a net.Conn that reads a fixed input and discards what is written.
type streamConn struct{ r *bytes.Reader }

func (s *streamConn) Read(p []byte) (int, error)       { return s.r.Read(p) }
func (s *streamConn) Write(p []byte) (int, error)      { return len(p), nil }
func (s *streamConn) Close() error                     { return nil }
func (s *streamConn) LocalAddr() net.Addr              { return fakeAddr{} }
func (s *streamConn) RemoteAddr() net.Addr             { return fakeAddr{} }
func (s *streamConn) SetDeadline(time.Time) error      { return nil }
func (s *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (s *streamConn) SetWriteDeadline(time.Time) error { return nil }

type fakeAddr struct{}

func (fakeAddr) Network() string { return "fuzz" }
func (fakeAddr) String() string  { return "fuzz:0" }

// fuzzLimits keep the fuzzer from spending its time allocating legal 64 MiB frames.
const (
	fuzzMaxFrame    = 1 << 20
	fuzzMaxInflated = 4 << 20
)

func addFrameSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.bin"))
	if err != nil || len(files) < 50 {
		f.Fatalf("seed files: %v (%d)", err, len(files))
	}
	for _, name := range files {
		if strings.HasSuffix(name, ".decoded.bin") {
			continue // a payload, not a frame
		}
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Frames in the fast codec, and a hello that switches it on.
	hello := appendFrame(nil, actionHello, appendZlibStored(nil, []byte(`{"v":1,"codecs":["s2"]}`)), true)
	raw := appendFrame(nil, "echo", []byte{tagRaw, 'k', '|', 'x'}, true)
	s2 := appendFrame(nil, "echo", appendFast(nil, compressible), true)
	f.Add(append(append(hello, raw...), s2...))
	f.Add(appendFrame(nil, actionLock, appendZlibStored(nil, []byte(`{"key":"a","token":"t","ttl_ms":5,"reply":"r"}`)), false))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
}

// FuzzReadFrame feeds arbitrary bytes to a server-side connection's read path, in
// three configurations (zlib only, AES key, fast codec accepted), and runs the
// built-in handler for every message it decodes. It must never panic, never return a
// message above the inflated limit, and never hang.
func FuzzReadFrame(f *testing.F) {
	addFrameSeeds(f)
	f.Fuzz(func(t *testing.T, input []byte) {
		for mode := range 3 {
			opts := []Option{WithMaxFrameSize(fuzzMaxFrame), WithMaxInflatedSize(fuzzMaxInflated), WithLimits(16, 16, 16, 64, 256)}
			if mode == 1 {
				opts = append(opts, WithAESKey(testKey128))
			}
			srv := NewBanServer("", "fuzz", opts...)
			c := srv.WrapConn(&streamConn{r: bytes.NewReader(input)})
			c.fastRecv.Store(mode == 2)
			for range 256 {
				m, err := c.ReadMsg()
				if err != nil {
					if errors.Is(err, ErrBadMessage) || errors.Is(err, ErrInflatedTooLarge) {
						continue
					}
					if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrameTooLarge) {
						t.Fatalf("unexpected read error %v", err)
					}
					break
				}
				if len(m.Data) > fuzzMaxInflated {
					t.Fatalf("message of %d bytes passed the inflated limit", len(m.Data))
				}
				routeSync(c, m)
			}
			_ = c.Close()
			_ = srv.Close()
		}
	})
}

// routeSync is route without the handler goroutine and without recover, so that a
// panic in a built-in handler fails the fuzz target.
func routeSync(c *BanConn, m *IOMsgRaw) {
	if key, ok := strings.CutPrefix(m.Action, resPrefix); ok {
		c.waits.deliver(key, m.Data, false)
		return
	}
	switch m.Action {
	case actionHello:
		c.onHello(m)
		return
	case actionWelcome:
		c.onWelcome(m)
		return
	}
	if cb := c.handlers.Load().lookup(m.Action); cb != nil {
		cb(m)
	}
}

// FuzzRoundTrip: whatever a caller sends, in every codec and with or without AES, the
// receiving side decodes exactly that; the zlib form is also readable by the standard
// library the way banbot reads it.
func FuzzRoundTrip(f *testing.F) {
	f.Add("ping", []byte("1"), true)
	f.Add("", []byte{}, false)
	f.Add("kline_币安_BTC/USDT", compressible, false)
	f.Add(resPrefix+"k", bytes.Repeat([]byte{0}, 70000), false)
	f.Fuzz(func(t *testing.T, action string, data []byte, noEncrypt bool) {
		for _, key := range []string{"", testKey128} {
			var opts []Option
			if key != "" {
				opts = append(opts, WithAESKey(key))
			}
			cfg, err := buildConfig(opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, codec := range []wireCodec{wireZlib, wireFast, wireRaw} {
				frame, err := encodeFrameWith(nil, &cfg, action, data, nil, true, noEncrypt, codec)
				if err != nil {
					t.Fatal(err)
				}
				c := newConn(&cfg, &streamConn{r: bytes.NewReader(frame)})
				c.fastRecv.Store(codec != wireZlib)
				m, err := c.ReadMsg()
				if err != nil {
					t.Fatalf("codec=%d key=%q: %v", codec, key, err)
				}
				if m.Action != action || m.NoEncrypt != noEncrypt || !bytes.Equal(m.Data, data) {
					t.Fatalf("codec=%d key=%q: got %q %v %d bytes", codec, key, m.Action, m.NoEncrypt, len(m.Data))
				}
				if codec == wireZlib {
					rm, err := refReadFrame(bytes.NewReader(frame), refKeyNoT(key))
					if err != nil || rm.Action != action || !bytes.Equal(rm.Data, nilIfEmpty(data)) {
						t.Fatalf("stdlib reader: %v", err)
					}
				}
				_ = c.Close()
			}
		}
	})
}

func refKeyNoT(keyHex string) []byte {
	if keyHex == "" {
		return nil
	}
	k, _ := hex.DecodeString(keyHex)
	return k
}
