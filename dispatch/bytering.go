package dispatch

import (
	"unsafe"

	"github.com/banfleet/banfleet/internal/offheap"
)

// byteRing holds the bytes of retained outcomes (id, type, result) outside the
// collected heap (internal/offheap), in one circular buffer written in resolution
// order.
//
// Why off the heap: a master retains up to DefaultRetainedBytes of results, and kept on
// the heap they let the runtime grow it to twice that before it collects, so the
// hot path's short-lived buffers (every job's payload and reply) land on memory no
// cache has seen: at 64 KiB that made the master's CPU per job twice what it was with
// nothing retained (docs/benchmarks.md "64 KiB and retained outcomes"). Here the heap
// stays small, and a result costs one copy in and one copy out when it is asked for.
//
// Outcomes leave the retained FIFO oldest first, so their results are freed in the
// order they were written and the buffer needs no allocator: the live bytes run from
// head to tail, and they wrap to the front once tail reaches the end, or once the
// front has room for all that is live: so a ring that holds little (100,000 outcomes
// of 64 B) touches about twice that, not the whole mapping. Nothing outside holds a
// slice of the buffer beyond its owner's lock (read copies out), which is what lets
// release unmap it. Guarded by Master.mu, like the retainStore that owns it.
type byteRing struct {
	want int    // bytes to map: the retained byte bound, which no sum of results exceeds
	size int    // bytes mapped (ensure): want, or less where want could not be mapped
	buf  []byte // nil until the first result, and again after release

	head, tail int
	wrapped    bool // the live bytes are buf[head:end] then buf[:tail]
	end        int  // while wrapped: where the bytes written before the wrap end
	touched    int  // high-water mark of the bytes written since the buffer was mapped
}

// ringSpan is where one outcome's bytes lie in the ring.
type ringSpan struct{ off, n int }

// releaseAbove is how much of the ring must have been touched for an emptied ring to
// be given back to the system: less is kept mapped, so that a master that comes idle
// between single jobs does not map and fault its pages in again for each.
const releaseAbove = 4 << 20

// fits reports whether n more bytes fit without freeing any.
func (r *byteRing) fits(n int) bool {
	switch {
	case n == 0:
		return true
	case r.wrapped:
		return r.tail+n <= r.head
	default:
		return r.tail+n <= r.size || n <= r.head
	}
}

// mapMemory maps the ring's memory; tests replace it to make mapping fail.
var mapMemory = offheap.Map

// minRingBytes is the smallest ring ensure settles for before it gives up.
const minRingBytes = 1 << 20

// ensure maps the ring if it is not, and reports how many bytes it holds then. Where
// want bytes cannot be mapped (a strict overcommit policy, a small address space), it
// tries half as many, and so on down to minRingBytes: fewer outcomes are retained then,
// which is better than none. It fails only if even that cannot be mapped.
func (r *byteRing) ensure() (int, error) {
	if r.buf != nil {
		return r.size, nil
	}
	size := r.want
	for {
		buf, err := mapMemory(size)
		if err == nil {
			r.buf, r.size = buf, size
			return size, nil
		}
		if size <= minRingBytes {
			return 0, err
		}
		size = max(size/2, minRingBytes)
	}
}

// put copies id, typ and result in, one after the other, and returns where they lie.
// The ring is mapped (ensure), and the caller has checked fits.
func (r *byteRing) put(id, typ string, result []byte) ringSpan {
	n := len(id) + len(typ) + len(result)
	if n == 0 {
		return ringSpan{}
	}
	if !r.wrapped && (r.tail+n > r.size || (n <= r.head && r.head >= r.tail-r.head)) {
		r.wrapped, r.end, r.tail = true, r.tail, 0
	}
	sp := ringSpan{off: r.tail, n: n}
	b := r.buf[sp.off : sp.off+n]
	copy(b, id)
	copy(b[len(id):], typ)
	copy(b[len(id)+len(typ):], result)
	r.tail += n
	r.touched = max(r.touched, r.tail)
	return sp
}

// str returns n bytes at off within sp as a string that aliases the ring: valid only
// until sp is freed, and only under the owner's lock. Compare it or copy it.
func (r *byteRing) str(sp ringSpan, off, n int) string {
	if n == 0 {
		return ""
	}
	return unsafe.String(&r.buf[sp.off+off], n)
}

// read returns a copy of the bytes of sp from off on.
func (r *byteRing) read(sp ringSpan, off int) []byte {
	if sp.n <= off {
		return nil
	}
	return append([]byte(nil), r.buf[sp.off+off:sp.off+sp.n]...)
}

// free gives back the oldest result, at sp.
func (r *byteRing) free(sp ringSpan) {
	if sp.n == 0 {
		return
	}
	r.head = sp.off + sp.n
	if r.wrapped && r.head == r.end {
		r.head, r.wrapped, r.end = 0, false, 0
	}
	if !r.wrapped && r.head == r.tail {
		r.head, r.tail = 0, 0
	}
}

// emptied is told that no result is left: a ring that held much is unmapped.
func (r *byteRing) emptied() {
	if r.touched > releaseAbove {
		r.release()
	}
}

// release unmaps the buffer; the ring maps a new one when it is next given a result.
func (r *byteRing) release() {
	// Unmap fails only for memory that is not a mapping, which buf always is.
	_ = offheap.Unmap(r.buf)
	*r = byteRing{want: r.want, size: r.want}
}
