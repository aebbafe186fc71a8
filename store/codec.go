package store

import (
	"encoding/binary"
	"slices"
	"time"
)

// The primitives every encoding of this package is built from, as in
// protocol's envelopes: integers are uvarints (zig-zag varints for times and durations),
// strings and byte strings a uvarint length and the bytes, booleans one byte 0 or 1,
// a time its Unix nanoseconds (0 for the zero time), a string map its entry count and
// its entries in increasing key order. Decoding is strict: a boolean other than 0 or
// 1, map keys out of order or repeated, a length past the end, or bytes left over are
// errors, so every value has one encoding and re-encoding what was decoded gives it
// back.

func appendUint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

func appendInt(dst []byte, v int) []byte { return binary.AppendUvarint(dst, uint64(max(v, 0))) }

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendTime(dst []byte, t time.Time) []byte {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	return binary.AppendVarint(dst, ns)
}

func appendDuration(dst []byte, d time.Duration) []byte { return binary.AppendVarint(dst, int64(d)) }

func appendMap(dst []byte, m map[string]string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	if len(m) == 0 {
		return dst
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = appendString(dst, k)
		dst = appendString(dst, m[k])
	}
	return dst
}

// reader decodes with a sticky error: after the first error every read returns zero
// values. own says the bytes it returns must be copies (a bolt value is valid only
// within its transaction); otherwise they alias the input.
type reader struct {
	p   []byte
	own bool
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = malformed("bad or truncated %s", what)
	}
	r.p = nil
}

func (r *reader) byte(what string) byte {
	if len(r.p) == 0 {
		r.fail(what)
		return 0
	}
	b := r.p[0]
	r.p = r.p[1:]
	return b
}

func (r *reader) bool(what string) bool {
	switch r.byte(what) {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail(what + " (not a boolean)")
	return false
}

func (r *reader) uint(what string) uint64 {
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.p = r.p[n:]
	return v
}

// int reads a uvarint that must fit a non-negative int32.
func (r *reader) int(what string) int {
	v := r.uint(what)
	if v > maxInt {
		r.fail(what + " (out of range)")
		return 0
	}
	return int(v)
}

func (r *reader) varint(what string) int64 {
	v, n := binary.Varint(r.p)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *reader) time(what string) time.Time {
	ns := r.varint(what)
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (r *reader) duration(what string) time.Duration { return time.Duration(r.varint(what)) }

// count reads a number of items that each take at least min bytes, refusing counts the
// input cannot hold before anything is allocated for them.
func (r *reader) count(what string, min int) int {
	n := r.uint(what)
	if n > uint64(len(r.p)/min) {
		r.fail(what + " (more items than bytes)")
		return 0
	}
	return int(n)
}

func (r *reader) raw(what string) []byte {
	n := r.uint(what)
	if n > uint64(len(r.p)) {
		r.fail(what)
		return nil
	}
	b := r.p[:n:n]
	r.p = r.p[n:]
	return b
}

func (r *reader) string(what string) string { return string(r.raw(what)) }

// bytes reads a byte string; empty is nil.
func (r *reader) bytes(what string) []byte {
	b := r.raw(what)
	if len(b) == 0 {
		return nil
	}
	if r.own {
		return slices.Clone(b)
	}
	return b
}

func (r *reader) stringMap(what string, limit int) map[string]string {
	n := r.count(what, 2)
	if n == 0 {
		return nil
	}
	if n > limit {
		r.fail(what + " (too many entries)")
		return nil
	}
	m := make(map[string]string, n)
	prev := ""
	for i := range n {
		k := r.string(what)
		if i > 0 && k <= prev {
			r.fail(what + " (keys not in increasing order)")
			return nil
		}
		m[k], prev = r.string(what), k
	}
	return m
}

// end fails if bytes are left over.
func (r *reader) end(what string) {
	if r.err == nil && len(r.p) != 0 {
		r.err = malformed("%d bytes after the %s", len(r.p), what)
	}
}
