package banio

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The write path. Every frame of a connection goes through one writer. Callers encode
// their frame on their own goroutine (compression and encryption run in parallel), then
// hand it to the writer:
//
//   - if nobody is writing, the caller becomes the owner and writes its frame straight
//     to the socket (lowest latency for a lone caller, no goroutine switch);
//   - otherwise the frame is appended to the pending buffer, and whoever owns the socket
//     writes everything pending in one syscall when its current write returns.
//
// An inline owner writes once; if more piled up meanwhile it hands ownership to the
// connection's writer goroutine, so no caller is kept writing for others. Broadcast
// never writes inline: a slow subscriber must not stall it. Neither do the NoBlock
// sends of read loops: they append, and the end of the read batch hands the frames to
// the writer goroutine (writeDefer, flush.go).
type writer struct {
	busyAt atomic.Int64 // unix ns when a sender last found the socket owned by another

	mu      sync.Mutex
	cond    sync.Cond // signalled when owner is released
	nc      net.Conn  // the socket frames go to; nil while disconnected or closed
	pending []byte    // frames waiting for the owner
	spare   []byte    // the other half of the double buffer
	owner   bool      // a goroutine holds the right to write to nc
	// deferred: pending holds frames a read batch deferred, and the connection is in
	// the deferred set (flush.go) or being flushed from it.
	deferred bool
	closing  bool   // Close has begun: no new frames
	running  bool   // the writer goroutine has been started
	spilled  int    // bytes of writeSpill frames waiting for room on their own goroutines
	batches  uint64 // batches taken by the writer goroutine
	tidied   uint64 // batches when tidyWriter last looked
	room     chan struct{}
	wake     chan struct{} // cap 1: ownership handed to the writer goroutine
	retire   chan struct{} // cap 1: the writer goroutine may end, the connection is idle
}

// busyWindow: for this long after a sender found the socket busy, senders queue their
// frames for the writer goroutine instead of writing inline, so that a steady stream of
// requests from many goroutines leaves in few syscalls. A lone caller never finds the
// socket busy and keeps writing inline, with no goroutine switch.
const busyWindow = 100 * time.Microsecond

// recentlyBusy reports whether a sender found the socket busy within busyWindow.
func (w *writer) recentlyBusy() bool {
	t := w.busyAt.Load()
	return t != 0 && time.Now().UnixNano()-t < int64(busyWindow)
}

// maxKeptBuffer: buffers that grew past this are not kept once the connection is idle.
const maxKeptBuffer = 1 << 20

// writeMode says how a frame may be written: flags, none set = queue it and wait for
// room in a full queue.
type writeMode uint8

const (
	writeQueued  writeMode = 0
	writeInline  writeMode = 1 << iota // the caller may write to the socket itself
	writeNoBlock                       // a full queue is a slow consumer: cut the connection
	writeSpill                         // a full queue: wait for room on a goroutine of its own
	writeAlone                         // a one-off frame: inline even in a burst (send)
	writeDefer                         // append only; the end of a read batch flushes it (flush.go)
)

// writeOneOff is for heartbeats and the welcome: a small frame now and then, written
// inline (briefly) even amid a burst and never waiting for room, so that it does not
// start the writer goroutine of an otherwise idle connection (tidyWriter lets that
// goroutine end only after an interval with nothing to write).
const writeOneOff = writeInline | writeAlone | writeSpill

func (c *BanConn) initWriter() {
	c.out.cond.L = &c.out.mu
	c.out.wake = make(chan struct{}, 1)
	c.out.retire = make(chan struct{}, 1)
}

// enqueue sends one encoded frame. It waits at most the write timeout for room in a
// full queue (writeNoBlock cuts the connection instead, writeSpill leaves the waiting
// to a goroutine). The frame is copied or written before enqueue returns; the caller
// may reuse it.
func (c *BanConn) enqueue(frame []byte, mode writeMode) error {
	w := &c.out
	w.mu.Lock()
	var deadline time.Time
	var progress uint64 // c.progress when the wait for room began (or last moved)
	for len(w.pending) > 0 && len(w.pending)+len(frame) > c.cfg.maxPending {
		if w.closing {
			w.mu.Unlock()
			return ErrConnClosed
		}
		if mode&writeSpill != 0 && w.spilled+len(frame) <= c.cfg.maxPending {
			// The caller must not wait (a read loop): a goroutine waits instead, with
			// its own copy of the frame. Answers to different keys need no order.
			w.spilled += len(frame)
			w.mu.Unlock()
			go c.enqueueSpilled(slices.Clone(frame), mode&^(writeSpill|writeInline|writeDefer))
			return nil
		}
		if mode&writeSpill != 0 && c.client != nil {
			// A client is never cut (it reconnects; its queue may be full only
			// because it is disconnected): the frame fails instead.
			w.mu.Unlock()
			return fmt.Errorf("%w: write queue and its overflow are full", ErrLimit)
		}
		if mode&(writeNoBlock|writeSpill) != 0 {
			// Cut the slow consumer without waiting for its stuck socket: the
			// broadcaster must not stall. Later frames are refused at once.
			w.closing = true
			w.mu.Unlock()
			go c.closeWithError(ErrSlowConsumer)
			return ErrSlowConsumer
		}
		if !w.owner && w.nc != nil {
			// What fills the queue may be deferred frames waiting for a read batch to
			// end, perhaps the caller's own: room comes only once they are written.
			w.owner = true
			c.kickLocked()
		}
		if deadline.IsZero() {
			deadline, progress = time.Now().Add(c.cfg.writeTimeout), c.progress.Load()
		}
		if w.room == nil {
			w.room = make(chan struct{})
		}
		room := w.room
		w.mu.Unlock()
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-room:
			timer.Stop()
		case <-timer.C:
			// The queue is full behind a large batch still leaving: as long as it
			// makes progress the wait is no stall, however long the batch takes.
			if p := c.progress.Load(); p == progress {
				return ErrTimeout
			} else {
				deadline, progress = time.Now().Add(c.cfg.writeTimeout), p
			}
		case <-c.done:
			timer.Stop()
			return ErrConnClosed
		}
		w.mu.Lock()
	}
	if w.closing {
		w.mu.Unlock()
		return ErrConnClosed
	}
	if mode&writeDefer != 0 && !w.owner && w.nc != nil {
		// A read loop's delivery (or a frame sent while one may be in a batch): appended
		// now, written when the batch ends (flush.go).
		w.pending = append(w.pending, frame...)
		add := !w.deferred
		w.deferred = true
		w.mu.Unlock()
		deferred.note(c, add)
		return nil
	}
	if w.owner || w.nc == nil || mode&writeInline == 0 || len(w.pending) > 0 {
		if w.owner {
			w.busyAt.Store(time.Now().UnixNano())
		}
		w.pending = append(w.pending, frame...)
		if !w.owner && w.nc != nil {
			w.owner = true
			c.kickLocked()
		}
		w.mu.Unlock()
		return nil
	}
	// Nobody writes and nothing waits: write this frame ourselves, without copying it.
	w.owner = true
	nc := w.nc
	w.mu.Unlock()
	if err := c.writeBatch(nc, frame, true, mode&writeSpill != 0); err != nil {
		// Our own frame did not go out (the socket is dropped; a client reconnects):
		// say so rather than report a frame lost as sent.
		if isTimeout(err) {
			return fmt.Errorf("%w: write: %v", ErrTimeout, err)
		}
		return fmt.Errorf("%w: write: %v", ErrConnClosed, err)
	}
	return nil
}

// enqueueSpilled waits for room for a frame whose sender could not. A peer that has
// not made room within the write timeout is cut: the frame's sender never learns of
// the failure, and the peer's next frames would only pile up behind it. A client is
// not cut (its queue may be full because it is reconnecting): the frame is dropped
// and logged.
func (c *BanConn) enqueueSpilled(frame []byte, mode writeMode) {
	err := c.enqueue(frame, mode)
	c.out.mu.Lock()
	c.out.spilled -= len(frame)
	c.out.mu.Unlock()
	switch {
	case !errors.Is(err, ErrTimeout):
	case c.client != nil:
		c.badLog.log(c.log, slog.LevelWarn, "banio: frame dropped: the write queue stayed full for the write timeout", "bytes", len(frame))
	default:
		c.closeWithError(ErrSlowConsumer)
	}
}

// kickLocked hands ownership to the writer goroutine, starting it on first use (an idle
// connection costs no writer goroutine). w.mu must be held and w.owner set.
func (c *BanConn) kickLocked() {
	w := &c.out
	if !w.running {
		w.running = true
		// A retire sent while the last writer goroutine was already ending is not
		// for this one: it would end the new goroutine at its first idle moment.
		select {
		case <-w.retire:
		default:
		}
		c.wg.Add(1)
		go c.writeLoop()
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// writeLoop is the writer goroutine: it writes whatever is pending each time ownership
// is handed to it, and ends when tidyWriter finds the connection idle (the next burst
// starts it again), so that idle connections cost no goroutine for writing.
func (c *BanConn) writeLoop() {
	defer c.wg.Done()
	w := &c.out
	for {
		select {
		case <-w.wake:
		case <-w.retire:
			w.mu.Lock()
			if !w.owner && len(w.pending) == 0 {
				w.running = false // only this goroutine clears it: never two writers
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			continue // a wake is on its way
		case <-c.done:
			return
		}
		// Let the goroutines that are runnable now (callers woken by the same burst of
		// results) append their frames first, so that one write carries them all.
		runtime.Gosched()
		w.mu.Lock()
		if w.nc == nil || len(w.pending) == 0 {
			c.releaseLocked()
			w.mu.Unlock()
			continue
		}
		nc, buf := w.nc, w.takeLocked()
		w.mu.Unlock()
		c.writeBatch(nc, buf, false, false)
	}
}

// takeLocked swaps the double buffer and wakes writers waiting for room.
func (w *writer) takeLocked() []byte {
	buf := w.pending
	w.pending, w.spare = w.spare[:0], nil
	w.batches++
	if w.room != nil {
		close(w.room)
		w.room = nil
	}
	return buf
}

// tidyWriter is the heartbeat goroutines' housekeeping of the write path, once an
// interval. A connection that has written nothing through its writer goroutine since
// the last look gives back buffers a burst grew past maxKeptBuffer and lets the writer
// goroutine end. A busy connection keeps both: growing buffers again for every batch
// was a third of the CPU time of 64 KiB round trips.
func (c *BanConn) tidyWriter() {
	w := &c.out
	w.mu.Lock()
	defer w.mu.Unlock()
	idle := w.batches == w.tidied && !w.owner && len(w.pending) == 0
	w.tidied = w.batches
	if !idle {
		return
	}
	if cap(w.spare) > maxKeptBuffer {
		w.spare = nil
	}
	if cap(w.pending) > maxKeptBuffer {
		w.pending = nil
	}
	if w.running {
		select {
		case w.retire <- struct{}{}:
		default:
		}
	}
}

// releaseLocked gives up ownership.
func (c *BanConn) releaseLocked() {
	c.out.owner = false
	c.out.cond.Broadcast()
}

// writeBatch writes buf while owning the socket, then keeps writing what piled up
// meanwhile (the writer goroutine) or hands it to the writer goroutine (an inline
// caller). On a socket error the socket is dropped; for a client, pending frames
// survive for the next socket. It returns the error of an inline caller's own write.
//
// A brief inline write (writeSpill: a caller that must not wait) gives up after
// briefWrite and leaves the rest of its frame at the head of the queue for the writer
// goroutine, which waits the full write timeout.
func (c *BanConn) writeBatch(nc net.Conn, buf []byte, inline, brief bool) error {
	w := &c.out
	for {
		var n int
		var err error
		if brief {
			c.setWriteDeadline(nc, briefWrite)
			n, err = nc.Write(buf)
		} else {
			n, err = c.writeChunks(nc, buf)
		}
		w.mu.Lock()
		if brief && err != nil && isTimeout(err) && w.nc == nc && !w.closing {
			// The peer's socket buffer is full: the writer goroutine finishes it, from
			// a copy (buf is the caller's).
			rest := make([]byte, 0, len(buf)-n+len(w.pending))
			w.pending = append(append(rest, buf[n:]...), w.pending...)
			c.kickLocked()
			w.mu.Unlock()
			return nil
		}
		if !inline && w.spare == nil {
			w.spare = buf[:0] // any size; trimBuffers drops large ones later
		}
		if err != nil && w.nc == nc {
			w.nc = nil
			c.releaseLocked()
			closing := w.closing
			w.mu.Unlock()
			if !closing { // else a close is under way, with its own reason
				c.socketFailed(nc, err)
			}
			if inline {
				return err
			}
			return nil
		}
		if w.nc == nil || len(w.pending) == 0 || w.closing {
			c.releaseLocked()
			w.mu.Unlock()
			if inline {
				return err
			}
			return nil
		}
		if inline {
			c.kickLocked()
			w.mu.Unlock()
			return err
		}
		nc, buf, inline, brief = w.nc, w.takeLocked(), false, false
		w.mu.Unlock()
	}
}

// briefWrite bounds an inline write for a caller that must not wait.
const briefWrite = time.Millisecond

// writeChunk is how much of a batch one write deadline covers. The write timeout bounds
// a stall, not a frame's size: a 45 MB frame over a 1 MB/s link takes 45 s and
// succeeds, because each chunk gets the full timeout; a link slower than writeChunk per
// write timeout (26 KB/s with the default 10 s) counts as stalled.
const writeChunk = 256 << 10

// writeChunks writes buf to nc one chunk at a time, each under a fresh write deadline.
// Chunks rather than one long write with its deadline moved on progress: after a
// timeout a TLS connection cannot be written to again.
func (c *BanConn) writeChunks(nc net.Conn, buf []byte) (int, error) {
	written := 0
	for {
		c.setWriteDeadline(nc, c.cfg.writeTimeout)
		n, err := nc.Write(buf[written:min(len(buf), written+writeChunk)])
		written += n
		if err != nil || written == len(buf) {
			return written, err
		}
		// A large batch leaving is the peer reading it: liveness (silentFor), since
		// our own pings cannot overtake the frame being written.
		c.progress.Add(uint64(n))
	}
}

// setWriteDeadline gives nc's next write d, unless Close has begun: flushAndDetach's
// short grace deadline must not be pushed back by a write starting just after it
// (hence under the writer's lock).
func (c *BanConn) setWriteDeadline(nc net.Conn, d time.Duration) {
	w := &c.out
	w.mu.Lock()
	switch {
	case w.closing:
	case d > 0:
		_ = nc.SetWriteDeadline(time.Now().Add(d))
	default:
		_ = nc.SetWriteDeadline(time.Time{})
	}
	w.mu.Unlock()
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// attachSocket makes nc the socket frames go to, sending first frames (the handshake
// and subscriptions of a reconnecting client) ahead of anything queued meanwhile. It
// reports false when the connection is closing.
func (c *BanConn) attachSocket(nc net.Conn, first []byte) bool {
	w := &c.out
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing {
		return false
	}
	if len(first) > 0 {
		w.pending = append(first, w.pending...)
	}
	w.nc = nc
	if !w.owner && len(w.pending) > 0 {
		w.owner = true
		c.kickLocked()
	}
	return true
}

// detachSocket forgets nc if it is still the current socket.
func (c *BanConn) detachSocket(nc net.Conn) {
	w := &c.out
	w.mu.Lock()
	if w.nc == nc {
		w.nc = nil
	}
	w.mu.Unlock()
}

// flushAndDetach is Close's part of the write path: stop taking frames, wait for the
// current owner (its write is bounded by the deadline set here), write what is pending,
// and return the socket for closing.
func (c *BanConn) flushAndDetach(grace time.Duration) net.Conn {
	w := &c.out
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closing = true
	if w.room != nil {
		close(w.room)
		w.room = nil
	}
	nc := w.nc
	if nc != nil {
		_ = nc.SetWriteDeadline(time.Now().Add(grace))
	}
	for w.owner {
		w.cond.Wait()
	}
	nc = w.nc // a failed write may have dropped it meanwhile
	if nc != nil && len(w.pending) > 0 {
		_, _ = nc.Write(w.pending)
	}
	w.nc, w.pending, w.spare = nil, nil, nil
	return nc
}
