package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	"net"
	"sync"
	"time"
)

// The bytes an attacker puts on the wire, written here rather than through banio:
// the attacks need frames no honest banio peer sends (bombs, forged lengths, empty
// frames), and banio's encoders are unexported. docs/protocol.md §1–§4 is the
// reference for every byte below.

// typeDef is the gob definition of IOMsgRaw as type 64, with its length byte
// (docs/protocol.md §2.2). Every frame body starts with it.
var typeDef = []byte{
	0x37, 0x7f, 0x03, 0x01, 0x01, 0x08, 'I', 'O', 'M', 's', 'g', 'R', 'a', 'w', 0x01, 0xff,
	0x80, 0x00, 0x01, 0x03, 0x01, 0x06, 'A', 'c', 't', 'i', 'o', 'n', 0x01, 0x0c, 0x00, 0x01,
	0x04, 'D', 'a', 't', 'a', 0x01, 0x0a, 0x00, 0x01, 0x09, 'N', 'o', 'E', 'n', 'c', 'r', 'y',
	'p', 't', 0x01, 0x02, 0x00, 0x00, 0x00,
}

// appendGobUint appends x in gob's unsigned encoding (§2.1).
func appendGobUint(dst []byte, x uint64) []byte {
	if x < 0x80 {
		return append(dst, byte(x))
	}
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], x)
	i := 0
	for be[i] == 0 {
		i++
	}
	dst = append(dst, byte(-(8 - i)))
	return append(dst, be[i:]...)
}

// frame is one complete frame: length header, type definition, value (§2.3). data is
// put on the wire as it is (already compressed or tagged); nil means no Data field.
func frame(action string, data []byte, noEncrypt bool) []byte {
	var v []byte
	v = append(v, 0xff, 0x80) // type id 64
	last := -1
	if action != "" {
		v = append(v, byte(0-last))
		v = appendGobUint(v, uint64(len(action)))
		v = append(v, action...)
		last = 0
	}
	if len(data) > 0 {
		v = append(v, byte(1-last))
		v = appendGobUint(v, uint64(len(data)))
		v = append(v, data...)
		last = 1
	}
	if noEncrypt {
		v = append(v, byte(2-last), 1)
	}
	v = append(v, 0)
	body := append(append([]byte(nil), typeDef...), appendGobUint(nil, uint64(len(v)))...)
	body = append(body, v...)
	out := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	return append(out, body...)
}

// zlibOf is payload as an ordinary zlib stream (what banbot sends).
func zlibOf(payload []byte) []byte {
	var b bytes.Buffer
	w, _ := zlib.NewWriterLevel(&b, zlib.BestSpeed)
	_, _ = w.Write(payload)
	_ = w.Close()
	return b.Bytes()
}

// zframe is frame with payload zlib-compressed, as a banbot peer or a banfleet peer
// before the handshake sends it.
func zframe(action string, payload []byte) []byte {
	return frame(action, zlibOf(payload), false)
}

// rawTagged is payload in the negotiated fast codec, tag 00 (raw).
func rawTagged(payload []byte) []byte { return append([]byte{0x00}, payload...) }

// zbuilder writes a zlib stream block by block: stored blocks for the parts that
// vary, and shared pre-compressed deflate blocks for long runs of one byte. That
// makes thousands of distinct, hugely compressible payloads cheap to build.
type zbuilder struct {
	out   []byte
	adler hash.Hash32
}

func newZBuilder() *zbuilder {
	return &zbuilder{out: []byte{0x78, 0x01}, adler: adler32.New()}
}

// stored appends p as non-final stored blocks.
func (z *zbuilder) stored(p []byte) {
	_, _ = z.adler.Write(p)
	for len(p) > 0 {
		n := min(len(p), 65535)
		z.out = append(z.out, 0x00, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		z.out = append(z.out, p[:n]...)
		p = p[n:]
	}
}

// run appends n bytes of fill, deflated (shared between builders).
func (z *zbuilder) run(fill byte, n int) {
	z.out = append(z.out, deflatedRun(fill, n)...)
	chunk := bytes.Repeat([]byte{fill}, min(n, 1<<20))
	for left := n; left > 0; left -= len(chunk) {
		_, _ = z.adler.Write(chunk[:min(left, len(chunk))])
	}
}

// finish closes the stream: a final empty stored block and the Adler-32.
func (z *zbuilder) finish() []byte {
	z.out = append(z.out, 0x01, 0x00, 0x00, 0xff, 0xff)
	return binary.BigEndian.AppendUint32(z.out, z.adler.Sum32())
}

// runCache holds deflatedRun's results by (fill, n).
var runCache sync.Map

// deflatedRun is n bytes of fill as deflate blocks at the best level, ending with a
// sync flush (so more blocks may follow, byte-aligned). 300 MiB of zeros become
// ~306 KB (deflate's ratio tops out near 1032:1).
func deflatedRun(fill byte, n int) []byte {
	key := [2]int{int(fill), n}
	if b, ok := runCache.Load(key); ok {
		return b.([]byte)
	}
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	chunk := bytes.Repeat([]byte{fill}, min(n, 1<<20))
	for left := n; left > 0; left -= len(chunk) {
		_, _ = w.Write(chunk[:min(left, len(chunk))])
	}
	_ = w.Flush()
	runCache.Store(key, b.Bytes())
	return b.Bytes()
}

// wireMsg is a decoded frame body; gob matches the fields by name.
type wireMsg struct {
	Action    string
	Data      []byte
	NoEncrypt bool
}

// readFrameBody reads one frame and decodes its gob body. Data stays as sent.
func readFrameBody(br *bufio.Reader, limit int) (wireMsg, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return wireMsg{}, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if int64(n) > int64(limit) {
		return wireMsg{}, fmt.Errorf("frame of %d bytes, over %d", n, limit)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return wireMsg{}, err
	}
	var m wireMsg
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(&m); err != nil {
		return wireMsg{}, fmt.Errorf("bad frame body: %w", err)
	}
	return m, nil
}

// decodeData undoes the codec: raw-tagged when fast was negotiated, else zlib.
func decodeData(data []byte, fast bool) ([]byte, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if fast && data[0] == 0x00 {
		return data[1:], nil
	}
	if fast && data[0] == 0x01 {
		return nil, errors.New("s2 payload (not decoded by the harness)")
	}
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(zr, 64<<20))
}

// rawPeer is a hand-driven connection to the master.
type rawPeer struct {
	nc   net.Conn
	br   *bufio.Reader
	fast bool // the master accepted the fast codec (our hello offered s2)
}

// dialRaw connects to addr from source address src (nil: any).
func dialRaw(addr string, src net.IP, timeout time.Duration) (*rawPeer, error) {
	d := net.Dialer{Timeout: timeout}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawPeer{nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}, nil
}

// send writes b within timeout.
func (p *rawPeer) send(b []byte, timeout time.Duration) error {
	_ = p.nc.SetWriteDeadline(time.Now().Add(timeout))
	_, err := p.nc.Write(b)
	return err
}

// recv reads one message within timeout and decodes its Data.
func (p *rawPeer) recv(timeout time.Duration) (string, []byte, error) {
	_ = p.nc.SetReadDeadline(time.Now().Add(timeout))
	m, err := readFrameBody(p.br, 64<<20)
	if err != nil {
		return "", nil, err
	}
	data, err := decodeData(m.Data, p.fast)
	return m.Action, data, err
}

// welcome is the master's answer to a hello (docs/protocol.md §10).
type welcome struct {
	V     int    `json:"v"`
	Codec string `json:"codec"`
	Error string `json:"error"`
}

// helloFrame is a client's hello (always zlib-coded).
func helloFrame(token string, s2 bool) []byte {
	h := map[string]any{"v": 1}
	if s2 {
		h["codecs"] = []string{"s2"}
	}
	if token != "" {
		h["token"] = token
	}
	b, _ := json.Marshal(h)
	return zframe("__hello__", b)
}

// hello says hello and reads until the welcome.
func (p *rawPeer) hello(token string, s2 bool, timeout time.Duration) (welcome, error) {
	var w welcome
	if err := p.send(helloFrame(token, s2), timeout); err != nil {
		return w, err
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		action, data, err := p.recv(time.Until(deadline))
		if err != nil {
			return w, err
		}
		if action != "__welcome__" {
			continue
		}
		if err := json.Unmarshal(data, &w); err != nil {
			return w, fmt.Errorf("bad welcome %q: %w", data, err)
		}
		p.fast = w.Codec == "s2"
		return w, nil
	}
	return w, errors.New("no welcome")
}

// roundTrip sends onGetVal for key and waits for its reply: handlers of one
// connection run in order, so the reply means everything sent before it was handled.
// It returns the other messages received meanwhile.
func (p *rawPeer) roundTrip(key string, timeout time.Duration) (value []byte, others []received, err error) {
	q, _ := json.Marshal(key)
	var data []byte
	if p.fast {
		data = rawTagged(q)
	} else {
		data = zlibOf(q)
	}
	if err := p.send(frame("onGetVal", data, false), timeout); err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		action, data, err := p.recv(time.Until(deadline))
		if err != nil {
			return nil, others, err
		}
		if action == "__res__"+key {
			return data, others, nil
		}
		others = append(others, received{action, data})
	}
}

// received is a message the master sent.
type received struct {
	action string
	data   []byte
}

// close closes the socket.
func (p *rawPeer) close() { _ = p.nc.Close() }

// watchClose reads (and discards) everything until the connection ends, then
// closes the returned channel. at receives the time it ended.
func (p *rawPeer) watchClose() (done <-chan struct{}, at *time.Time) {
	ch := make(chan struct{})
	t := new(time.Time)
	go func() {
		_ = p.nc.SetReadDeadline(time.Time{})
		_, _ = io.Copy(io.Discard, p.br)
		*t = time.Now()
		close(ch)
	}()
	return ch, t
}

// loopbackSource is the i-th of n 127.0.0.x source addresses, from 127.0.0.2 up, to
// look like several hosts (127.0.0.1 stays for the honest peers).
func loopbackSource(i, n int) net.IP { return net.IPv4(127, 0, 0, byte(2+i%n)) }
