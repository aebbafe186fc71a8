package banio

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// Golden frames produced by banbot's real BanConn.WriteMsg (testdata/README.md).

type vector struct {
	Name          string          `json:"name"`
	File          string          `json:"file"`
	Action        string          `json:"action"`
	NoEncrypt     bool            `json:"no_encrypt"`
	Key           string          `json:"key"`
	Encrypted     bool            `json:"encrypted"`
	DataKind      string          `json:"data_kind"`
	DataGiven     json.RawMessage `json:"data_given"`
	FrameLen      int             `json:"frame_len"`
	DecodedLen    int             `json:"decoded_len"`
	DecodedB64    string          `json:"decoded_b64"`
	DecodedSHA256 string          `json:"decoded_sha256"`
	DecodedFile   string          `json:"decoded_file"`
	Deterministic bool            `json:"deterministic"`
	Note          string          `json:"note"`
}

type vectorIndex struct {
	Keys    map[string]string `json:"keys"`
	Vectors []vector          `json:"vectors"`
}

func loadVectors(t testing.TB) vectorIndex {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx vectorIndex
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Vectors) < 50 {
		t.Fatalf("index.json lists %d vectors, expected the full set", len(idx.Vectors))
	}
	return idx
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decoded returns the bytes a handler must receive for v, checked against its sha256.
func (v vector) decoded(t testing.TB) []byte {
	t.Helper()
	var b []byte
	switch {
	case v.DecodedFile != "":
		b = readTestdata(t, v.DecodedFile)
	case v.DecodedB64 != "":
		var err error
		if b, err = base64.StdEncoding.DecodeString(v.DecodedB64); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != v.DecodedSHA256 || len(b) != v.DecodedLen {
		t.Fatalf("%s: index decoded bytes do not match their sha256/length", v.Name)
	}
	return b
}

// present reports whether the vector carries Data at all (nil Data travels as none).
func (v vector) present() bool { return v.DataKind != "nil" }

// decodeStream feeds stream to a BanConn through net.Pipe and reads it with ReadMsg,
// banio's real read path (readFrame → decodeBody → decodeData). Messages that fail with
// a recoverable error are reported in errs, in order, as nil entries in msgs.
func decodeStream(t testing.TB, stream []byte, opts ...Option) (msgs []*IOMsgRaw, errs []error) {
	t.Helper()
	msgs, errs, err := decodeStreamEnd(t, stream, opts...)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("ReadMsg: %v", err)
	}
	return msgs, errs
}

// decodeStreamErr is decodeStream for streams that end with a read error; it returns
// the messages and that error.
func decodeStreamErr(t testing.TB, stream []byte, opts ...Option) ([]*IOMsgRaw, error) {
	t.Helper()
	msgs, _, err := decodeStreamEnd(t, stream, opts...)
	return msgs, err
}

func decodeStreamEnd(t testing.TB, stream []byte, opts ...Option) (msgs []*IOMsgRaw, errs []error, end error) {
	t.Helper()
	cfg, err := buildConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	c := newConn(&cfg, a)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, _ = b.Write(stream)
		_ = b.Close()
	}()
	for {
		m, err := c.ReadMsg()
		if err != nil {
			if errors.Is(err, ErrBadMessage) || errors.Is(err, ErrInflatedTooLarge) {
				msgs, errs = append(msgs, nil), append(errs, err)
				continue
			}
			end = err
			break
		}
		msgs, errs = append(msgs, m), append(errs, nil)
	}
	_ = c.Close()
	<-wrote
	return msgs, errs, end
}

// TestVectorsDecode: every golden frame decodes through banio's read path to its
// recorded action, NoEncrypt flag and data, with its recorded key.
func TestVectorsDecode(t *testing.T) {
	leakcheck.Check(t)
	idx := loadVectors(t)
	for _, v := range idx.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			var opts []Option
			if v.Key != "" {
				opts = append(opts, WithAESKey(v.Key))
			}
			frame := readTestdata(t, v.File)
			if len(frame) != v.FrameLen {
				t.Fatalf("file is %d bytes, index says %d", len(frame), v.FrameLen)
			}
			msgs, errs := decodeStream(t, frame, opts...)
			if len(msgs) != 1 || errs[0] != nil {
				t.Fatalf("decoded %d messages, errors %v; want 1 message", len(msgs), errs)
			}
			m := msgs[0]
			if m.Action != v.Action || m.NoEncrypt != v.NoEncrypt {
				t.Errorf("got action %q NoEncrypt=%v, want %q %v", m.Action, m.NoEncrypt, v.Action, v.NoEncrypt)
			}
			if want := v.decoded(t); !bytes.Equal(m.Data, want) {
				t.Errorf("data differs: got %d bytes %.60q, want %d bytes %.60q", len(m.Data), m.Data, len(want), want)
			}
		})
	}
}

// TestVectorsReferenceReader checks the test's standard-library reference reader
// against the golden frames, so that the interop tests built on it mean something.
func TestVectorsReferenceReader(t *testing.T) {
	idx := loadVectors(t)
	for _, v := range idx.Vectors {
		m, err := refReadFrame(bytes.NewReader(readTestdata(t, v.File)), refKey(t, v.Key))
		if err != nil {
			t.Errorf("%s: reference reader: %v", v.Name, err)
			continue
		}
		if m.Action != v.Action || m.NoEncrypt != v.NoEncrypt || !bytes.Equal(m.Data, v.decoded(t)) {
			t.Errorf("%s: reference reader got %q %v %.40q", v.Name, m.Action, m.NoEncrypt, m.Data)
		}
	}
}

// TestVectorsReferenceEncoder: gob + zlib level 6 from the standard library reproduce
// every deterministic banbot frame byte for byte (this validates refEncode, which the
// interop tests use to play a banbot peer).
func TestVectorsReferenceEncoder(t *testing.T) {
	idx := loadVectors(t)
	n := 0
	for _, v := range idx.Vectors {
		if !v.Deterministic || v.Key != "" || v.Name == "foreign_stored_zlib" {
			continue
		}
		var data []byte
		if v.present() {
			data = append([]byte{}, v.decoded(t)...)
		}
		got := refEncodeFrame(t, v.Action, data, v.NoEncrypt, nil)
		if want := readTestdata(t, v.File); !bytes.Equal(got, want) {
			t.Errorf("%s: stdlib gob+zlib frame differs from the golden file\n got %x\nwant %x", v.Name, head(got), head(want))
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d deterministic vectors checked", n)
	}
}

func head(b []byte) []byte { return b[:min(len(b), 120)] }

// TestVectorsOurEncoderStdlibReader: for every vector, banio's encoder (zlib codec, as
// used with banbot peers) produces a frame that the standard-library reference reader
// decodes to the same action, flag and data, with the vector's key.
func TestVectorsOurEncoderStdlibReader(t *testing.T) {
	leakcheck.Check(t)
	idx := loadVectors(t)
	for _, v := range idx.Vectors {
		var opts []Option
		if v.Key != "" {
			opts = append(opts, WithAESKey(v.Key))
		}
		cfg, err := buildConfig(opts)
		if err != nil {
			t.Fatal(err)
		}
		data := v.decoded(t)
		frame, err := encodeFrameWith(nil, &cfg, v.Action, data, nil, v.present(), v.NoEncrypt, wireZlib)
		if err != nil {
			t.Fatalf("%s: encode: %v", v.Name, err)
		}
		if !bytes.HasPrefix(frame[4:], typeDef) {
			t.Errorf("%s: frame does not start with the type definition", v.Name)
		}
		m, err := refReadFrame(bytes.NewReader(frame), refKey(t, v.Key))
		if err != nil {
			t.Errorf("%s: stdlib reader cannot read our frame: %v", v.Name, err)
			continue
		}
		if m.Action != v.Action || m.NoEncrypt != v.NoEncrypt || !bytes.Equal(m.Data, nilIfEmpty(data)) {
			t.Errorf("%s: stdlib reader got %q %v %.40q", v.Name, m.Action, m.NoEncrypt, m.Data)
		}
		// And banio reads its own frame back.
		msgs, errs := decodeStream(t, frame, opts...)
		if len(msgs) != 1 || errs[0] != nil || !bytes.Equal(msgs[0].Data, nilIfEmpty(data)) {
			t.Errorf("%s: banio cannot read its own frame: %v", v.Name, errs)
		}
	}
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// TestVectorsWriteMsgValues: IOMsg.Data given as banbot's callers gave it (string,
// []byte, JSON values) marshals to the bytes banbot's handlers received. JSON is
// compared as JSON (map key order is not specified).
func TestVectorsWriteMsgValues(t *testing.T) {
	idx := loadVectors(t)
	for _, v := range idx.Vectors {
		if v.Key != "" || v.Name == "foreign_stored_zlib" || v.DecodedFile != "" {
			continue
		}
		var given any
		switch {
		case v.DataKind == "nil":
			given = nil
		case v.DataKind == "string":
			var s string
			if err := json.Unmarshal(v.DataGiven, &s); err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			given = s
		case strings.HasPrefix(v.DataKind, "bytes"):
			// data_given holds the bytes as a JSON string; base64 where the note says so.
			var s string
			if err := json.Unmarshal(v.DataGiven, &s); err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			b := []byte(s)
			if strings.Contains(v.Note, "base64") {
				var err error
				if b, err = base64.StdEncoding.DecodeString(s); err != nil {
					t.Fatalf("%s: %v", v.Name, err)
				}
			}
			given = b
		case strings.Contains(v.DataKind, "NaN"):
			continue // encoding/json refuses NaN; banbot's sonic writes null (docs/protocol.md)
		case strings.HasPrefix(v.DataKind, "json"):
			dec := json.NewDecoder(bytes.NewReader(v.DataGiven))
			dec.UseNumber()
			if err := dec.Decode(&given); err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
		default:
			t.Fatalf("%s: unknown data kind %q", v.Name, v.DataKind)
		}
		data, _, present, err := marshalData(given)
		if err != nil {
			t.Fatalf("%s: marshal: %v", v.Name, err)
		}
		if present != v.present() {
			t.Errorf("%s: present=%v", v.Name, present)
		}
		want := v.decoded(t)
		if strings.HasPrefix(v.DataKind, "json") {
			if !jsonEqual(t, data, want) {
				t.Errorf("%s: marshalled %s, banbot %s", v.Name, data, want)
			}
		} else if !bytes.Equal(data, want) {
			t.Errorf("%s: marshalled %q, banbot %q", v.Name, data, want)
		}
	}
}

func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// TestVectorStream: four frames back to back decode to four messages in order.
func TestVectorStream(t *testing.T) {
	leakcheck.Check(t)
	msgs, errs := decodeStream(t, readTestdata(t, "stream_4frames.bin"))
	want := []struct {
		action, data string
		noEncrypt    bool
	}{
		{"ping", "7", true}, {"pong", "8", true}, {"subscribe", `["t1"]`, false}, {"empty_nil", "", false},
	}
	if len(msgs) != len(want) {
		t.Fatalf("decoded %d messages (errors %v), want 4", len(msgs), errs)
	}
	for i, w := range want {
		if errs[i] != nil {
			t.Fatalf("message %d: %v", i, errs[i])
		}
		m := msgs[i]
		if m.Action != w.action || string(m.Data) != w.data || m.NoEncrypt != w.noEncrypt {
			t.Errorf("message %d = %q %q %v, want %q %q %v", i, m.Action, m.Data, m.NoEncrypt, w.action, w.data, w.noEncrypt)
		}
	}
}

// TestVectorZeroLengthFrame: a zero-length frame is a bad message that is skipped; the
// frame after it still decodes.
func TestVectorZeroLengthFrame(t *testing.T) {
	leakcheck.Check(t)
	stream := append(readTestdata(t, "zero_length_frame.bin"), readTestdata(t, "ping.bin")...)
	msgs, errs := decodeStream(t, stream)
	if len(msgs) != 2 || !errors.Is(errs[0], ErrBadMessage) {
		t.Fatalf("got %d results %v, want ErrBadMessage then ping", len(msgs), errs)
	}
	if errs[1] != nil || msgs[1].Action != "ping" || string(msgs[1].Data) != "1" {
		t.Fatalf("frame after the empty one: %v %+v", errs[1], msgs[1])
	}
}

// TestVectorForeign: a frame from another gob encoder (struct wireMsg, type id 65,
// stored zlib) takes the gob fallback and decodes.
func TestVectorForeign(t *testing.T) {
	leakcheck.Check(t)
	frame := readTestdata(t, "foreign_stored_zlib.bin")
	if _, ok := decodeFast(frame[4:]); ok {
		t.Fatal("decodeFast accepted a foreign type definition; the fallback was not exercised")
	}
	msgs, errs := decodeStream(t, frame)
	if len(msgs) != 1 || errs[0] != nil || msgs[0].Action != "greet" || string(msgs[0].Data) != "hello banio" {
		t.Fatalf("got %v %v", msgs, errs)
	}
}

// TestVectorsWrongKey: a frame encrypted under another key is ErrBadMessage, and the
// connection reads the next frame. Unencrypted (NoEncrypt) and empty frames do not
// depend on the key.
func TestVectorsWrongKey(t *testing.T) {
	leakcheck.Check(t)
	idx := loadVectors(t)
	ping := readTestdata(t, "ping.bin")
	n := 0
	for _, v := range idx.Vectors {
		if v.Key != idx.Keys["aes128"] {
			continue
		}
		stream := append(readTestdata(t, v.File), ping...)
		msgs, errs := decodeStream(t, stream, WithAESKey(idx.Keys["aes256"]))
		if len(msgs) != 2 {
			t.Fatalf("%s: %d results, want 2", v.Name, len(msgs))
		}
		if v.NoEncrypt || !v.present() {
			if errs[0] != nil {
				t.Errorf("%s: unencrypted frame failed with the wrong key: %v", v.Name, errs[0])
			}
		} else if !errors.Is(errs[0], ErrBadMessage) {
			t.Errorf("%s: wrong key gave %v, want ErrBadMessage", v.Name, errs[0])
		} else {
			n++
		}
		if errs[1] != nil || msgs[1].Action != "ping" {
			t.Errorf("%s: frame after the undecryptable one: %v", v.Name, errs[1])
		}
	}
	if n < 15 {
		t.Fatalf("only %d encrypted vectors were refused", n)
	}
}

// TestVectorsThroughServer plays the golden frames to a real ServerIO over TCP: the
// 4-frame stream's ping is answered and its subscription takes effect, a zero-length
// frame is skipped without closing, and banbot's onSetVal/onGetVal frames work.
func TestVectorsThroughServer(t *testing.T) {
	leakcheck.Check(t)
	srv, addr, _ := startServer(t)
	p := dialRaw(t, addr, nil)

	p.write(readTestdata(t, "zero_length_frame.bin"))
	p.write(readTestdata(t, "stream_4frames.bin"))
	if m := p.expect("pong"); string(m.Data) != "8" {
		t.Fatalf("pong to the stream's ping 7 = %q, want 8", m.Data)
	}
	p.barrier() // the stream's subscribe has been handled
	if err := srv.Broadcast(&IOMsg{Action: "t1", Data: "tick"}); err != nil {
		t.Fatal(err)
	}
	if m := p.expect("t1"); string(m.Data) != "tick" {
		t.Fatalf("broadcast data %q", m.Data)
	}

	p.write(readTestdata(t, "onSetVal.bin"))
	p.barrier()
	var kv KeyValExpire
	idx := loadVectors(t)
	for _, v := range idx.Vectors {
		if v.Name == "onSetVal" {
			if err := json.Unmarshal(v.decoded(t), &kv); err != nil {
				t.Fatal(err)
			}
		}
	}
	if kv.Key == "" || srv.GetVal(kv.Key) != kv.Val {
		t.Fatalf("onSetVal vector %+v not stored: GetVal=%q", kv, srv.GetVal(kv.Key))
	}
}
