package banio

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/banfleet/banfleet/internal/monoclock"
)

// writer is the write path of one connection: it owns the connection's socket (one
// net.Conn, swapped by attach and detach while a client reconnects) and is the only
// thing that writes to it. Producers hand it encoded frames with write; the frames are
// appended to one contiguous pending buffer under mu, and the writer goroutine (started
// on first need, retired by tidy after an interval with nothing to write) writes
// everything pending with one syscall, then whatever piled up meanwhile. Under load a
// write carries every frame its producers appended while the previous one was leaving.
//
// The rule for who writes, one for every frame:
//
//   - a read loop's deliveries (writeDefer: WriteMsgNoBlock, SendWaitResNoBlock) are
//     appended, and the writer joins the process-wide deferred set; its goroutine is
//     signalled once the read batches end (flush.go), so a burst read together leaves
//     as one write per destination;
//   - every other frame is appended and the writer goroutine signalled, at once.
//
// No producer writes the socket: there is no inline fast path. Three were measured
// against this rule. Writing inline whenever a caller finds the socket idle and nothing
// pending made BenchmarkRoundTrip/64B/callers=64 7× slower (17 µs against 2.4 µs a
// round trip, same run): on 2 cores the callers woken by a burst of results run one
// after another, each finding the socket idle, so each wrote alone. Guessing bursts from
// six inputs to avoid that (the heuristic this writer replaced, with AddServing) gave
// no gain over never writing inline: in bench/, banio-rtt at 1 caller had a p50 of
// 1.60× rawtcp-mux's with it and 1.18× without, at 64 callers 0.94× and 0.96× of
// rawtcp-mux's throughput (medians of 4 runs each, interleaved). Writing frames of
// 32 KiB and more inline when the socket is idle (to save copying them) measured
// 94 µs against 90 µs per 64 KiB round trip at 64 callers, and the same at 1 caller.
// The one exception is not about speed: writeOneOff frames (heartbeats, the welcome,
// a client's first hello) are written by their sender when the socket is idle, so
// that a heartbeat does not start the writer goroutine of an otherwise idle
// connection; on a socket that cannot resume a timed-out write (TLS:
// resumesAfterTimeout) they queue like the others.
//
// Pending bytes are bounded by cfg.maxPending: write waits for room up to the write
// timeout (ErrTimeout) while the batch ahead makes no progress; writeSpill leaves the
// waiting to a goroutine of its own, for at most another bound's worth of frames; past
// the bound, writeNoBlock and writeSpill cut a connection that does not reconnect as
// a slow consumer (hooks.slowConsumer). Every write to the socket has a deadline,
// renewed per writeChunk, and a failed write drops the socket (hooks.socketFailed); a
// reconnecting connection keeps its pending frames for the next socket, behind the
// frames attach puts first. flushAndDetach (Close) writes what is pending within a
// grace.
//
// One contiguous buffer, written with one write, rather than a list of frames written
// with writev (net.Buffers): BenchmarkBatchWrite, over loopback, wrote a batch of 64
// frames of 64 B in half the time contiguous (5.5 µs against 10.7 µs: the kernel's
// per-iovec work costs more than the copy), and 1 or 8 frames of 64 KiB no slower
// (38 µs against 41 µs, 370 µs against 450 µs, medians of 3). The list would also need
// the writer to own each frame's buffer until written, where now a sender reuses its
// pooled buffer as soon as write returns.
type writer struct {
	cfg   writerConfig
	hooks writerHooks

	// mu protects the following fields.
	mu      sync.Mutex
	cond    sync.Cond // signalled when owner is released
	nc      net.Conn  // the socket frames go to; nil while disconnected or closed
	pending []byte    // frames waiting for the owner
	spare   []byte    // the other half of the double buffer
	owner   bool      // a goroutine holds the right to write to nc
	// deferred: pending holds frames a read batch deferred, and the writer is in the
	// deferred set (flush.go) or being flushed from it.
	deferred bool
	closing  bool // flushAndDetach has begun: no new frames
	// armedFor and armedUntil are the socket whose write deadline setWriteDeadline
	// set last, and until when (monoclock.Now; 0: no deadline).
	armedFor   net.Conn
	armedUntil time.Duration
	running    bool   // the writer goroutine has been started
	spilled    int    // bytes of writeSpill frames waiting for room on their own goroutines
	batches    uint64 // batches taken by the writer goroutine
	tidied     uint64 // batches when tidy last looked
	room       chan struct{}
	// wake (cap 1) wakes the writer goroutine: to take ownership (handed to it by
	// kickLocked), to end because the connection is idle (retiring), or to end for
	// good (stopped). One channel, not one for each: the goroutine waits on it after
	// every batch, and a receive costs less than a select over three.
	wake     chan struct{}
	retiring bool // tidy found the connection idle: the writer goroutine may end
	stopped  bool // flushAndDetach is done: the writer goroutine ends

	wg sync.WaitGroup // the writer goroutine and spilled frames' goroutines
}

// writerConfig is what a writer needs of its connection's configuration.
type writerConfig struct {
	maxPending   int           // bound of pending bytes (WithMaxPendingBytes)
	writeTimeout time.Duration // deadline of each chunk written, and of a wait for room
	// reconnects: the connection outlives a lost socket (a client). It is never cut as
	// a slow consumer (its queue may be full only because it is disconnected): frames
	// past the bounds fail, or are dropped (hooks.dropped).
	reconnects bool
}

// writerHooks is how a writer tells its connection what happened. The hooks are called
// without the writer's lock held, and may call the writer.
type writerHooks struct {
	// socketFailed: a write to nc failed; the writer has dropped nc already. Not
	// called once flushAndDetach has begun (a close has its own reason).
	socketFailed func(nc net.Conn, err error)
	// slowConsumer: the pending bound was passed by a frame that must not wait; the
	// writer refuses new frames from now on, the connection should close. Called on a
	// goroutine of its own.
	slowConsumer func()
	// dropped: a spilled frame of a reconnecting connection found no room within the
	// write timeout and was dropped (bytes is its size).
	dropped func(bytes int)
	// progress counts bytes of large batches written so far: the peer reading them is
	// alive, though our pings cannot overtake the batch.
	progress *atomic.Uint64
}

// maxKeptBuffer: buffers that grew past this are not kept once the connection is idle.
const maxKeptBuffer = 1 << 20

// writeMode says how a frame may be written: flags, none set = queue it for the writer
// goroutine and wait for room in a full queue.
type writeMode uint8

const (
	writeQueued  writeMode = 0
	writeInline  writeMode = 1 << iota // the caller writes to an idle socket itself (writeOneOff)
	writeNoBlock                       // a full queue is a slow consumer: cut the connection
	writeSpill                         // a full queue: wait for room on a goroutine of its own
	writeDefer                         // append only; the end of a read batch flushes it (flush.go)
)

// writeOneOff is for heartbeats, the welcome and a client's first hello: a small frame
// now and then, written by its sender (briefly) when the socket is idle and never
// waiting for room, so that it does not start the writer goroutine of an otherwise idle
// connection (tidy lets that goroutine end only after an interval with nothing to
// write). Behind other frames it queues like them.
const writeOneOff = writeInline | writeSpill

// init readies w around its first socket nc (nil: none yet).
func (w *writer) init(cfg writerConfig, hooks writerHooks, nc net.Conn) {
	w.cfg, w.hooks, w.nc = cfg, hooks, nc
	if w.hooks.progress == nil {
		w.hooks.progress = new(atomic.Uint64)
	}
	w.cond.L = &w.mu
	w.wake = make(chan struct{}, 1)
}

// write sends one encoded frame. It waits at most the write timeout for room in a full
// queue (writeNoBlock cuts the connection instead, writeSpill leaves the waiting to a
// goroutine). The frame is copied or written before write returns; the caller may
// reuse it. An error says the frame will not be sent.
func (w *writer) write(frame []byte, mode writeMode) error {
	return w.writeFrame(&outFrame{whole: frame}, mode)
}

// writeFrame is write for a frame given as an outFrame: a raw message's frame is
// encoded straight into the pending buffer, its payload copied once.
func (w *writer) writeFrame(f *outFrame, mode writeMode) error {
	size := f.size()
	w.mu.Lock()
	var deadline time.Time
	var progress uint64 // w.hooks.progress when the wait for room began (or last moved)
	for len(w.pending) > 0 && len(w.pending)+size > w.cfg.maxPending {
		if w.closing {
			w.mu.Unlock()
			return ErrConnClosed
		}
		if mode&writeSpill != 0 && w.spilled+size <= w.cfg.maxPending {
			// The caller must not wait (a read loop): a goroutine waits instead, with
			// its own copy of the frame. Answers to different keys need no order.
			w.spilled += size
			w.wg.Add(1)
			w.mu.Unlock()
			go w.writeSpilled(f.appendTo(make([]byte, 0, size)), mode&^(writeSpill|writeInline|writeDefer))
			return nil
		}
		if mode&writeSpill != 0 && w.cfg.reconnects {
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
			go w.hooks.slowConsumer()
			return ErrSlowConsumer
		}
		if !w.owner && w.nc != nil {
			// What fills the queue may be deferred frames waiting for a read batch to
			// end, perhaps the caller's own: room comes only once they are written.
			w.owner = true
			w.kickLocked()
		}
		if deadline.IsZero() {
			deadline, progress = time.Now().Add(w.cfg.writeTimeout), w.hooks.progress.Load()
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
			if p := w.hooks.progress.Load(); p == progress {
				return ErrTimeout
			} else {
				deadline, progress = time.Now().Add(w.cfg.writeTimeout), p
			}
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
		w.pending = f.appendTo(w.pending)
		add := !w.deferred
		w.deferred = true
		w.mu.Unlock()
		deferred.note(w, add)
		return nil
	}
	if w.owner || w.nc == nil || mode&writeInline == 0 || len(w.pending) > 0 || !resumesAfterTimeout(w.nc) {
		w.pending = f.appendTo(w.pending)
		if !w.owner && w.nc != nil {
			w.owner = true
			w.kickLocked()
		}
		w.mu.Unlock()
		return nil
	}
	// A one-off frame, nobody writes and nothing waits: write it ourselves. It is
	// copied (a heartbeat now and then): writing f's own bytes would make every frame's
	// parts escape to the heap, the action string send builds on its stack included.
	w.owner = true
	nc := w.nc
	w.mu.Unlock()
	frame := f.appendTo(make([]byte, 0, size))
	if err := w.writeBatch(nc, frame, true, mode&writeSpill != 0); err != nil {
		// Our own frame did not go out (the socket is dropped; a client reconnects):
		// say so rather than report a frame lost as sent.
		if isTimeout(err) {
			return fmt.Errorf("%w: write: %v", ErrTimeout, err)
		}
		return fmt.Errorf("%w: write: %v", ErrConnClosed, err)
	}
	return nil
}

// writeSpilled waits for room for a frame whose sender could not. A peer that has not
// made room within the write timeout is cut: the frame's sender never learns of the
// failure, and the peer's next frames would only pile up behind it. A reconnecting
// connection is not cut (its queue may be full because it is reconnecting): the frame
// is dropped.
func (w *writer) writeSpilled(frame []byte, mode writeMode) {
	defer w.wg.Done()
	err := w.write(frame, mode)
	w.mu.Lock()
	w.spilled -= len(frame)
	w.mu.Unlock()
	switch {
	case !errors.Is(err, ErrTimeout):
	case w.cfg.reconnects:
		w.hooks.dropped(len(frame))
	default:
		w.hooks.slowConsumer()
	}
}

// kickLocked hands ownership to the writer goroutine, starting it on first use (an idle
// connection costs no writer goroutine). w.mu must be held and w.owner set.
func (w *writer) kickLocked() {
	if !w.running {
		w.running = true
		w.wg.Add(1)
		go w.writeLoop()
	}
	w.wakeLocked()
}

// wakeLocked wakes the writer goroutine, if a wake is not pending already (one serves
// all: the goroutine looks at the writer's state once awake). w.mu must be held.
func (w *writer) wakeLocked() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// writeLoop is the writer goroutine: it writes whatever is pending each time ownership
// is handed to it, and ends when tidy finds the connection idle (the next burst starts
// it again), so that idle connections cost no goroutine for writing.
func (w *writer) writeLoop() {
	defer w.wg.Done()
	for {
		<-w.wake
		// Let the goroutines that are runnable now (callers woken by the same burst of
		// results) append their frames first, so that one write carries them all.
		runtime.Gosched()
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return
		}
		if !w.owner {
			// Not a handoff: tidy's wake, or one that came in after a handoff it
			// served already.
			if w.retiring && len(w.pending) == 0 {
				w.retiring, w.running = false, false // only this goroutine clears running: never two writers
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			continue
		}
		w.retiring = false // work came: not idle after all
		if w.nc == nil || len(w.pending) == 0 {
			w.releaseLocked()
			w.mu.Unlock()
			continue
		}
		nc, buf := w.nc, w.takeLocked()
		w.mu.Unlock()
		_ = w.writeBatch(nc, buf, false, false)
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

// tidy is the heartbeat goroutines' housekeeping of the write path, once an interval.
// A writer that has written nothing through its goroutine since the last look gives
// back buffers a burst grew past maxKeptBuffer and lets its goroutine end. A busy one
// keeps both: growing buffers again for every batch was a third of the CPU time of
// 64 KiB round trips.
func (w *writer) tidy() {
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
		w.retiring = true
		w.wakeLocked()
	}
}

// releaseLocked gives up ownership.
func (w *writer) releaseLocked() {
	w.owner = false
	w.cond.Broadcast()
}

// writeBatch writes buf while owning the socket, then keeps writing what piled up
// meanwhile (the writer goroutine) or hands it to the writer goroutine (an inline
// caller). On a socket error the socket is dropped; for a reconnecting connection,
// pending frames survive for the next socket. It returns the error of an inline
// caller's own write.
//
// A brief inline write (writeSpill: a caller that must not wait) gives up after
// briefWrite and leaves the rest of its frame at the head of the queue for the writer
// goroutine, which waits the full write timeout.
func (w *writer) writeBatch(nc net.Conn, buf []byte, inline, brief bool) error {
	for {
		var n int
		var err error
		if brief {
			w.setWriteDeadline(nc, briefWrite)
			n, err = nc.Write(buf)
		} else {
			n, err = w.writeChunks(nc, buf)
		}
		w.mu.Lock()
		if brief && err != nil && isTimeout(err) && w.nc == nc && !w.closing {
			// The peer's socket buffer is full: the writer goroutine finishes it, from
			// a copy (buf is the caller's).
			rest := make([]byte, 0, len(buf)-n+len(w.pending))
			w.pending = append(append(rest, buf[n:]...), w.pending...)
			w.kickLocked()
			w.mu.Unlock()
			return nil
		}
		if !inline && w.spare == nil {
			w.spare = buf[:0] // any size; tidy drops large ones later
		}
		if err != nil && w.nc == nc {
			w.nc = nil
			w.releaseLocked()
			closing := w.closing
			w.mu.Unlock()
			if !closing { // else a close is under way, with its own reason
				w.hooks.socketFailed(nc, err)
			}
			if inline {
				return err
			}
			return nil
		}
		if w.nc == nil || len(w.pending) == 0 || w.closing {
			w.releaseLocked()
			w.mu.Unlock()
			if inline {
				return err
			}
			return nil
		}
		if inline {
			w.kickLocked()
			w.mu.Unlock()
			return err
		}
		nc, buf, inline, brief = w.nc, w.takeLocked(), false, false
		w.mu.Unlock()
	}
}

// resumesAfterTimeout reports whether a write to nc that timed out part-way can be
// finished by a later write, as a brief inline write's is (writeBatch): true of a plain
// TCP or Unix socket, whose partial write leaves the rest to send. Not of a TLS
// connection, which a timed-out write leaves broken for good, and whose first write
// is its handshake, a round trip that a brief deadline cut under load (a client's
// hello failed, and its socket with it); nor of a socket we know nothing of. Frames
// for those go through the writer goroutine, whose deadline is the write timeout.
func resumesAfterTimeout(nc net.Conn) bool {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// briefWrite bounds an inline write for a caller that must not wait.
const briefWrite = time.Millisecond

// writeChunk is how much of a batch one write deadline covers. The write timeout bounds
// a stall, not a frame's size: a 45 MB frame over a 1 MB/s link takes 45 s and
// succeeds, because each chunk gets the timeout (at least 7/8 of it: setWriteDeadline);
// a link slower than writeChunk per 7/8 of the write timeout (30 KB/s with the default
// 10 s) counts as stalled.
const writeChunk = 256 << 10

// writeChunks writes buf to nc one chunk at a time, each under a fresh write deadline
// (setWriteDeadline).
// Chunks rather than one long write with its deadline moved on progress: after a
// timeout a TLS connection cannot be written to again.
func (w *writer) writeChunks(nc net.Conn, buf []byte) (int, error) {
	written := 0
	for {
		w.setWriteDeadline(nc, w.cfg.writeTimeout)
		n, err := nc.Write(buf[written:min(len(buf), written+writeChunk)])
		written += n
		if err != nil || written == len(buf) {
			return written, err
		}
		w.hooks.progress.Add(uint64(n))
	}
}

// setWriteDeadline gives nc's next write d, unless flushAndDetach has begun: its short
// grace deadline must not be pushed back by a write starting just after it (hence
// under the lock). A deadline set for an earlier write that is between d-d/rearmSlack
// and d away is left as it is: setting one costs a timer change in the runtime (about
// 130 ns, on every batch written), so a write may get its deadline up to an eighth of
// d early, never late.
func (w *writer) setWriteDeadline(nc net.Conn, d time.Duration) {
	w.mu.Lock()
	switch {
	case w.closing:
	case d > 0:
		now := monoclock.Now()
		if left := w.armedUntil - now; w.armedFor == nc && left >= d-d/rearmSlack && left <= d {
			break
		}
		_ = nc.SetWriteDeadline(time.Now().Add(d))
		w.armedFor, w.armedUntil = nc, now+d
	case w.armedFor != nc || w.armedUntil != 0:
		_ = nc.SetWriteDeadline(time.Time{})
		w.armedFor, w.armedUntil = nc, 0
	}
	w.mu.Unlock()
}

// rearmSlack: setWriteDeadline moves a deadline that has come closer than
// d-d/rearmSlack.
const rearmSlack = 8

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// attach makes nc the socket frames go to, sending first frames (the handshake and
// subscriptions of a reconnecting client) ahead of anything queued meanwhile. It
// reports false once flushAndDetach has begun.
func (w *writer) attach(nc net.Conn, first []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing {
		return false
	}
	if len(first) > 0 {
		w.pending = append(first, w.pending...)
	}
	w.nc, w.armedFor = nc, nil
	if !w.owner && len(w.pending) > 0 {
		w.owner = true
		w.kickLocked()
	}
	return true
}

// detach forgets nc if it is still the current socket; pending frames stay for the
// next one.
func (w *writer) detach(nc net.Conn) {
	w.mu.Lock()
	if w.nc == nc {
		w.nc = nil
	}
	w.mu.Unlock()
}

// flushAndDetach is Close's part of the write path: stop taking frames, wait for the
// current owner (its write is bounded by the deadline set here), write what is pending,
// and return the socket for closing. The writer goroutine ends.
func (w *writer) flushAndDetach(grace time.Duration) net.Conn {
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
		w.armedFor = nil
	}
	for w.owner {
		w.cond.Wait()
	}
	nc = w.nc // a failed write may have dropped it meanwhile
	if nc != nil && len(w.pending) > 0 {
		_, _ = nc.Write(w.pending)
	}
	w.nc, w.pending, w.spare = nil, nil, nil
	if !w.stopped {
		w.stopped = true // after the owner's write: a writer goroutine kicked before Close writes
		w.wakeLocked()
	}
	return nc
}
