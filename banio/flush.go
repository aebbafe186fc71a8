package banio

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
)

// Deferred flushes: a read loop's deliveries leave once per read batch.
//
// A read loop (readLoop) counts itself in a batch from the read that returned a frame
// until its buffered reader holds no complete frame any more. Frames sent meanwhile
// with a deferring mode (WriteMsgNoBlock, SendWaitResNoBlock: the calls for a read
// loop's handlers and wait callbacks) are only appended to their connection's pending
// buffer, and the connection is noted in the process-wide deferred set; when a read
// loop ends its batch it yields once (so that the other read loops' appends join) and
// kicks the writer goroutine of every connection in the set. So a burst of requests
// read together leaves as one write per destination, not one syscall per message on
// the read loop — nats-server's discipline (client.go: the pcd set, flushClients).
//
// No deferred frame is ever left unflushed. A frame may be deferred by a goroutine that
// is not a read loop, or just after the last read loop ended its batch, so every
// deferring sender re-checks after noting its connection:
//
//	sender:     append (w.mu) → add w to the set (set.mu) → load inBatch; 0: flush
//	read loop:  inBatch.Add(-1) → flush: take the set (set.mu) → kick each
//
// The atomics are sequentially consistent. If the sender's load sees inBatch > 0, some
// read loop R has not yet decremented: R's decrement follows the load, which follows
// the sender's add to the set, and R takes the set after its decrement, so R (or a
// flush between the two, which equally runs after the add) finds w. If the load sees
// 0, the sender flushes itself. A read loop in a batch reaches its end without waiting
// on the network (it reads only what is buffered) and ends its batch before it waits
// for anything else (room in the handler queue: push).
//
// A writer is in the set at most once: w.deferred says it is there (or taken by a
// flusher that has not yet locked w.mu), so the sender adds it only when the flag was
// clear. The flusher clears the flag under w.mu before looking at pending, so a frame
// appended under the flag is either seen by that flusher or adds w again.
type flushSet struct {
	inBatch atomic.Int32 // read loops in a batch
	queued  atomic.Bool  // conns is not empty: a cheap look at batch end

	mu    sync.Mutex // protects conns
	conns []*writer
}

// deferred is the process-wide deferred set: a read loop of one connection delivers to
// others, of the same server or not (a client's read loop may forward to a server's
// connection).
var deferred flushSet

// yieldBeforeFlush: a read loop ending its batch yields once before flushing, so that
// appends of read loops that are runnable now join the same writes.
var yieldBeforeFlush = true

// note records that w has deferred frames (add: w was not yet in the set) and
// flushes at once when no read loop is in a batch to do it.
func (s *flushSet) note(w *writer, add bool) {
	if add {
		s.mu.Lock()
		s.conns = append(s.conns, w)
		s.queued.Store(true)
		s.mu.Unlock()
	}
	if s.inBatch.Load() == 0 {
		s.flush()
	}
}

// begin counts a read loop into a batch.
func (s *flushSet) begin() { s.inBatch.Add(1) }

// end counts a read loop out of its batch and flushes the set. The decrement comes
// first (see the ordering above).
func (s *flushSet) end() {
	s.inBatch.Add(-1)
	if !s.queued.Load() {
		return
	}
	if yieldBeforeFlush {
		runtime.Gosched()
	}
	s.flush()
}

// flush kicks the writer of every connection in the set.
func (s *flushSet) flush() {
	s.mu.Lock()
	cs := s.conns
	s.conns = nil
	s.queued.Store(false)
	s.mu.Unlock()
	for i, w := range cs {
		w.flushDeferred()
		cs[i] = nil
	}
	if cap(cs) > 0 && cap(cs) <= 1024 {
		s.mu.Lock()
		if s.conns == nil {
			s.conns = cs[:0] // reuse the slice
		}
		s.mu.Unlock()
	}
}

// flushDeferred hands w's deferred frames to its writer goroutine.
func (w *writer) flushDeferred() {
	w.mu.Lock()
	w.deferred = false
	if !w.owner && w.nc != nil && !w.closing && len(w.pending) > 0 {
		w.owner = true
		w.kickLocked()
	}
	w.mu.Unlock()
}

// beginBatch and endBatch bracket a read loop's batch; only the reading goroutine calls
// them (c.batching is its own).
func (c *BanConn) beginBatch() {
	if !c.batching {
		c.batching = true
		deferred.begin()
	}
}

func (c *BanConn) endBatch() {
	if c.batching {
		c.batching = false
		deferred.end()
	}
}

// frameBuffered reports whether br holds a complete frame: reading it will not wait on
// the network.
func frameBuffered(br interface {
	Buffered() int
	Peek(int) ([]byte, error)
}) bool {
	n := br.Buffered()
	if n < 4 {
		return false
	}
	hdr, err := br.Peek(4)
	if err != nil {
		return false
	}
	return uint64(n-4) >= uint64(binary.LittleEndian.Uint32(hdr))
}
