package banio

import (
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// Work run on the read loop itself, movable off it.
//
// A client's inline handler may run a short task right on the read loop (RunMovable)
// instead of handing it to a goroutine of its own: for a worker answering short jobs,
// that hand-off (wake a goroutine, switch to it, park it again) was about a seventh of
// the CPU time of a remote call, master and client included (dispatch's
// BenchmarkClient at 64 B: 12.4 µs a call with the hand-off, 10.9 µs with the job run
// in place, alternating runs). The read loop must not stall behind a task that turns out to block
// or run long, though: its connection's results, cancels and heartbeats wait behind
// it. So a task still running after moveAfter gives the reading away: a new goroutine
// carries on with the read loop where it was (its buffered frames, its read batch, its
// reconnects), and the goroutine running the task leaves the read loop once the task is
// done. What the reading goroutine owns (the frame buffer, the bufio.Reader, the batch
// state, a ClientIO's dial state) moves with it; the task must not hold on to the
// message it was lent.
//
// The hand-over is one compare-and-swap on readerState.word, which holds the reading
// role's generation and whether a task runs on the read loop. The reading goroutine sets
// the running bit, runs the task and swaps the bit back; a mover (the timer, or
// MoveReading) swaps running for the next generation and starts the goroutine that
// carries on. Exactly one of the two swaps succeeds. The goroutine that lost the role
// sees the generation changed and leaves without touching the reader's fields again
// (readLoop, handleMsg).

// moveAfter is how long a task may run on the read loop before the reading moves to a
// goroutine of its own. A frame arriving meanwhile waits at most that long; a job that
// runs longer costs one goroutine start, as running it on one from the start would.
const moveAfter = 200 * time.Microsecond

// errReadMoved ends a readLoop whose goroutine gave the reading away (RunMovable). It
// never reaches a caller of RunForever.
var errReadMoved = errors.New("banio: reading moved to another goroutine")

// readerState is the reading role of a connection (BanConn.reader).
type readerState struct {
	// word is generation<<1 | running. Only the reading goroutine sets running; a mover
	// replaces a word with running set by the next generation.
	word atomic.Uint64
	// sock is the socket the reading goroutine reads (set by readLoop), for the
	// goroutine that carries on: written by the reader before it sets running, read by a
	// mover after its swap.
	sock  net.Conn
	timer *time.Timer   // calls the mover moveAfter into a task; the reader's
	moves atomic.Uint64 // moves so far (tests)
}

const readerRunning = 1

// generation is the reading role's current generation.
func (r *readerState) generation() uint64 { return r.word.Load() >> 1 }

// movedFrom reports whether the reading has moved away from the goroutine that read
// in generation gen.
func (r *readerState) movedFrom(gen uint64) bool { return r.generation() != gen }

// Runner is a task RunMovable runs.
type Runner interface{ Run() }

// RunMovable runs r on the read loop, from a handler the read loop runs (ListenInline,
// ListenInlineView) and only from there. If r is still running after a short while
// (200 µs), or calls MoveReading, the reading of c moves to a new goroutine and carries
// on without waiting for r; the handler's message must not be used after that. It
// reports whether the reading moved.
//
// For short tasks, it saves the goroutine hand-off per message that running them
// elsewhere costs; long ones pay one goroutine start, and delay the frames behind them
// by at most the short while.
func (c *ClientIO) RunMovable(r Runner) (moved bool) {
	st := &c.reader
	w := st.word.Load()
	if w&readerRunning != 0 {
		// A task on the read loop runs another: it is on the read loop too.
		r.Run()
		return false
	}
	if st.timer == nil {
		st.timer = time.AfterFunc(moveAfter, c.moveReading)
		st.timer.Stop()
	}
	st.word.Store(w | readerRunning)
	st.timer.Reset(moveAfter)
	defer func() {
		// The timer is the reader's: once the reading moved, it is the new reader's to
		// arm. A firing left over finds no task running, or moves a later one early,
		// which is harmless.
		if moved = !st.word.CompareAndSwap(w|readerRunning, w); !moved {
			st.timer.Stop()
		}
	}()
	r.Run()
	return false
}

// MoveReading moves the reading of c off a task that RunMovable runs, now: for a task
// about to wait for something only the read loop can bring (a result of this
// connection). It does nothing when no task runs on the read loop, and may be called
// from any goroutine.
func (c *ClientIO) MoveReading() { c.moveReading() }

// moveReading hands the reading role to a new goroutine if a task runs on the read loop.
func (c *ClientIO) moveReading() {
	st := &c.reader
	w := st.word.Load()
	if w&readerRunning == 0 || !st.word.CompareAndSwap(w, (w>>1+1)<<1) {
		return
	}
	st.moves.Add(1)
	nc := st.sock
	go c.carryOn(nc)
}

// carryOn is the reading goroutine after a move: RunForever's loop from socket nc on.
// The one that ends the loop for good hands RunForever its result.
//
// A handler that ends the reading goroutine (runtime.Goexit, as t.FailNow does) must not
// end the reading: the goroutine's frames are unwound by then, a panic's recovered
// below, so another goroutine carries on with the socket it read, unless the reading
// had moved away from this one before (its generation is not gen any more).
func (c *ClientIO) carryOn(nc net.Conn) {
	gen := c.reader.generation()
	ended := false
	defer func() {
		if !ended && !c.reader.movedFrom(gen) {
			go c.carryOn(c.reader.sock)
		}
	}()
	err := c.runFrom(nc)
	ended = true
	if !errors.Is(err, errReadMoved) {
		c.runEnded <- err
	}
}
