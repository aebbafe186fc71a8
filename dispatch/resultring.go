package dispatch

import (
	"github.com/banfleet/banfleet/internal/offheap"
)

// resultRing holds the results of retained outcomes outside the collected heap
// (internal/offheap), in one circular buffer written in resolution order.
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
// head to tail, and once tail reaches the end they wrap to the front. Nothing outside
// holds a slice of the buffer (read copies out), which is what lets release unmap it.
// Guarded by Master.mu, like the retainStore that owns it.
type resultRing struct {
	size int    // bytes to map: the retained byte bound, which no sum of results exceeds
	buf  []byte // nil until the first result, and again after release

	head, tail int
	wrapped    bool // the live bytes are buf[head:end] then buf[:tail]
	end        int  // while wrapped: where the bytes written before the wrap end
	touched    int  // high-water mark of the bytes written since the buffer was mapped
}

// ringSpan is where one result lies in the ring.
type ringSpan struct{ off, n int }

// releaseAbove is how much of the ring must have been touched for an emptied ring to
// be given back to the system: less is kept mapped, so that a master that comes idle
// between single jobs does not map and fault its pages in again for each.
const releaseAbove = 4 << 20

// fits reports whether n more bytes fit without freeing any.
func (r *resultRing) fits(n int) bool {
	switch {
	case n == 0:
		return true
	case r.wrapped:
		return r.tail+n <= r.head
	default:
		return r.tail+n <= r.size || n <= r.head
	}
}

// put copies b in and returns where it lies; the caller has checked fits. It fails only
// if the memory cannot be mapped.
func (r *resultRing) put(b []byte) (ringSpan, error) {
	n := len(b)
	if n == 0 {
		return ringSpan{}, nil
	}
	if r.buf == nil {
		buf, err := offheap.Map(r.size)
		if err != nil {
			return ringSpan{}, err
		}
		r.buf = buf
	}
	if !r.wrapped && r.tail+n > r.size {
		r.wrapped, r.end, r.tail = true, r.tail, 0
	}
	sp := ringSpan{off: r.tail, n: n}
	copy(r.buf[sp.off:sp.off+n], b)
	r.tail += n
	r.touched = max(r.touched, r.tail)
	return sp, nil
}

// read returns a copy of the result at sp.
func (r *resultRing) read(sp ringSpan) []byte {
	if sp.n == 0 {
		return nil
	}
	return append([]byte(nil), r.buf[sp.off:sp.off+sp.n]...)
}

// free gives back the oldest result, at sp.
func (r *resultRing) free(sp ringSpan) {
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
func (r *resultRing) emptied() {
	if r.touched > releaseAbove {
		r.release()
	}
}

// release unmaps the buffer; the ring maps a new one when it is next given a result.
func (r *resultRing) release() {
	// Unmap fails only for memory that is not a mapping, which buf always is.
	_ = offheap.Unmap(r.buf)
	*r = resultRing{size: r.size}
}
