package banio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"io"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zlib"
)

// Payload encodings. banbot requires every non-empty Data to be a zlib stream
// (docs/protocol.md), and a zlib stream's first byte always has 8 in its low nibble.
// Between banfleet peers that negotiated it (handshake.go), a payload may instead start
// with one of these tag bytes, which no zlib stream can begin with.
const (
	tagRaw byte = 0x00 // the payload follows uncompressed
	tagS2  byte = 0x01 // an s2 block follows (klauspost/compress/s2)
)

// Size thresholds for choosing how to compress.
const (
	// storedBelow: smaller payloads go out as zlib stored blocks; deflate cannot win
	// much on them and the stored form costs one copy and an Adler-32.
	storedBelow = 512
	// rawBelow: with the negotiated codec, smaller payloads go out uncompressed.
	rawBelow = 1024
	// maxStoredBlock is deflate's limit on one stored block.
	maxStoredBlock = 65535
	// maxS2Expansion bounds how much larger than its block an s2 payload may decode.
	// s2 must allocate the decoded length up front, so without it the claimed length
	// (up to the inflated-size limit) costs memory and zeroing whatever the peer sent.
	// appendFast sends data more compressible than this as zlib instead.
	maxS2Expansion = 256
)

// zlibWriters pools compressors: creating one costs ~800 KB of allocations, which is
// what made banbot GC-bound (docs/protocol.md).
var zlibWriters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(io.Discard, zlib.BestSpeed)
	return w
}}

// zlibReaders pools decompressors; nil until the first use creates one.
var zlibReaders sync.Pool

// appendWriter lets a compressor append straight into a byte slice.
type appendWriter struct{ buf []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// appendZlib appends a zlib stream of src to dst: stored blocks for small payloads,
// deflate at the fastest level otherwise, falling back to stored blocks when deflate
// does not shrink the data (random or already compressed payloads).
func appendZlib(dst, src []byte) []byte {
	if len(src) < storedBelow {
		return appendZlibStored(dst, src)
	}
	start := len(dst)
	aw := appendWriter{buf: dst}
	zw := zlibWriters.Get().(*zlib.Writer)
	zw.Reset(&aw)
	_, _ = zw.Write(src) // appendWriter never fails
	_ = zw.Close()
	zw.Reset(io.Discard) // drop the reference to aw's buffer
	zlibWriters.Put(zw)
	dst = aw.buf
	if len(dst)-start >= storedLen(len(src)) {
		return appendZlibStored(dst[:start], src)
	}
	return dst
}

// storedLen is the size of src as a zlib stream of stored blocks.
func storedLen(n int) int {
	blocks := n/maxStoredBlock + 1
	return 2 + blocks*5 + n + 4
}

// appendZlibStored appends src as a zlib stream of stored deflate blocks, which every
// zlib reader accepts (banbot's included).
func appendZlibStored(dst, src []byte) []byte {
	dst = append(dst, 0x78, 0x01)
	rest := src
	for {
		n := min(len(rest), maxStoredBlock)
		final := byte(0)
		if n == len(rest) {
			final = 1
		}
		dst = append(dst, final, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		dst = append(dst, rest[:n]...)
		rest = rest[n:]
		if final == 1 {
			break
		}
	}
	return binary.BigEndian.AppendUint32(dst, adler32.Checksum(src))
}

// inflateZlib decompresses a zlib stream, refusing output above limit.
func inflateZlib(src []byte, limit int) ([]byte, error) {
	if out, ok, err := inflateStored(src, limit); ok {
		return out, err
	}
	br := bytes.NewReader(src)
	var zr io.ReadCloser
	if pooled := zlibReaders.Get(); pooled != nil {
		zr = pooled.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(br, nil); err != nil {
			zlibReaders.Put(zr)
			return nil, fmt.Errorf("%w: zlib: %v", ErrBadMessage, err)
		}
	} else {
		r, err := zlib.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: zlib: %v", ErrBadMessage, err)
		}
		zr = r
	}
	defer zlibReaders.Put(zr)
	out, err := readCapped(zr, min(max(len(src)*4, 512), limit+1), limit)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readCapped reads r to its end into a buffer that starts at capacity initial and grows
// by doubling, never past limit+1 bytes: the one byte over the limit is how an oversized
// stream is told from one exactly at it, without allocating (or inflating) more.
func readCapped(r io.Reader, initial, limit int) ([]byte, error) {
	out := make([]byte, 0, min(initial, limit+1))
	for {
		if len(out) == cap(out) {
			if len(out) > limit {
				return nil, fmt.Errorf("%w: more than %d bytes", ErrInflatedTooLarge, limit)
			}
			grown := make([]byte, len(out), min(max(2*cap(out), 512), limit+1))
			copy(grown, out)
			out = grown
		}
		n, err := r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			if len(out) > limit {
				return nil, fmt.Errorf("%w: more than %d bytes", ErrInflatedTooLarge, limit)
			}
			if slack := cap(out) - len(out); slack > 64<<10 && slack > len(out)/8 {
				// The last doubling overshot: whoever keeps this payload (a blob, a
				// queued job) would hold up to twice its size against budgets that
				// count its length. One copy gives the excess back.
				out = append(make([]byte, 0, len(out)), out...)
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: zlib: %v", ErrBadMessage, err)
		}
	}
}

// inflateStored decodes the common case of a stream made only of stored blocks without
// running the inflater. ok is false when the stream is anything else.
func inflateStored(src []byte, limit int) (out []byte, ok bool, err error) {
	if len(src) < 2+5+4 || src[0] != 0x78 || (uint16(src[0])<<8|uint16(src[1]))%31 != 0 || src[1]&0x20 != 0 {
		return nil, false, nil
	}
	// First pass: check the layout and count the bytes, without allocating.
	total, p := 0, src[2:]
	for {
		if len(p) < 5 || p[0]&^1 != 0 {
			return nil, false, nil
		}
		n := int(binary.LittleEndian.Uint16(p[1:]))
		if binary.LittleEndian.Uint16(p[3:]) != ^uint16(n) || len(p) < 5+n {
			return nil, false, nil
		}
		total += n
		final := p[0] == 1
		p = p[5+n:]
		if final {
			break
		}
	}
	if len(p) < 4 {
		return nil, false, nil
	}
	if total > limit {
		return nil, true, fmt.Errorf("%w: more than %d bytes", ErrInflatedTooLarge, limit)
	}
	out = make([]byte, 0, total)
	for p = src[2:]; ; {
		n := int(binary.LittleEndian.Uint16(p[1:]))
		out = append(out, p[5:5+n]...)
		final := p[0] == 1
		p = p[5+n:]
		if final {
			break
		}
	}
	if binary.BigEndian.Uint32(p) != adler32.Checksum(out) {
		return nil, true, fmt.Errorf("%w: zlib: checksum mismatch", ErrBadMessage)
	}
	return out, true, nil
}

// appendFast appends src in the negotiated encoding: raw when small or when s2 does not
// shrink it, s2 otherwise.
func appendFast(dst, src []byte) []byte {
	if len(src) >= rawBelow {
		start := len(dst)
		dst = append(dst, tagS2)
		need := s2.MaxEncodedLen(len(src))
		if need > 0 {
			dst = growLen(dst, need)
			enc := s2.Encode(dst[start+1:start+1+need], src)
			if len(enc) < len(src) && len(src) <= maxS2Expansion*len(enc) {
				return dst[:start+1+len(enc)]
			}
			if len(src) > maxS2Expansion*len(enc) {
				// Too compressible for the receiver's expansion bound: zlib, whose
				// inflater grows its output as it goes, carries it instead.
				return appendZlib(dst[:start], src)
			}
		}
		dst = dst[:start]
	}
	dst = append(dst, tagRaw)
	return append(dst, src...)
}

// growLen extends dst by n bytes (contents undefined).
func growLen(dst []byte, n int) []byte {
	if cap(dst)-len(dst) < n {
		grown := make([]byte, len(dst), len(dst)+n+len(dst)/4)
		copy(grown, dst)
		dst = grown
	}
	return dst[:len(dst)+n]
}

// decodePayload undoes appendZlib or appendFast. fast says whether this connection
// negotiated the fast codec; without it only zlib is accepted, as banbot does.
func decodePayload(src []byte, fast bool, limit int) ([]byte, error) {
	if len(src) == 0 {
		return nil, nil
	}
	if fast {
		switch src[0] {
		case tagRaw:
			if len(src)-1 > limit {
				return nil, fmt.Errorf("%w: more than %d bytes", ErrInflatedTooLarge, limit)
			}
			return append([]byte(nil), src[1:]...), nil
		case tagS2:
			n, err := s2.DecodedLen(src[1:])
			if err != nil {
				return nil, fmt.Errorf("%w: s2: %v", ErrBadMessage, err)
			}
			if n > limit {
				return nil, fmt.Errorf("%w: more than %d bytes", ErrInflatedTooLarge, limit)
			}
			if n > maxS2Expansion*(len(src)-1) {
				// Checked before allocating n: a 78-byte frame may claim 256 MiB.
				return nil, fmt.Errorf("%w: s2 block of %d bytes claims %d decoded (more than %d×)", ErrInflatedTooLarge, len(src)-1, n, maxS2Expansion)
			}
			out, err := s2.Decode(make([]byte, n), src[1:])
			if err != nil {
				return nil, fmt.Errorf("%w: s2: %v", ErrBadMessage, err)
			}
			return out, nil
		}
	}
	return inflateZlib(src, limit)
}
