package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// errWriterClosed is returned by coalescer.send after close.
var errWriterClosed = errors.New("connection writer closed")

// maxSpare is the largest write buffer the coalescer keeps for reuse.
const maxSpare = 8 << 20

// coalescer is the single writer of one connection in the style of
// nats.go's flusher: senders append whole frames to a pending buffer under
// a mutex and wake the writer goroutine, which swaps the buffer out and
// writes everything pending with one syscall. Under load many frames share
// one write; an idle connection writes each frame at once.
type coalescer struct {
	conn net.Conn

	mu     sync.Mutex
	buf    []byte
	err    error
	closed bool

	kick chan struct{} // capacity 1: "there is something to write"
	quit chan struct{}
	done chan struct{}
}

// newCoalescer starts the writer goroutine for conn.
func newCoalescer(conn net.Conn) *coalescer {
	w := &coalescer{
		conn: conn,
		kick: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go w.run()
	return w
}

// send queues one frame carrying id and p; p is copied before send
// returns.
func (w *coalescer) send(id uint64, p []byte) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.buf = appendMuxFrame(grow(w.buf, muxHeader+len(p)), id, p)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default: // the writer is already due to run
	}
	return nil
}

func (w *coalescer) run() {
	defer close(w.done)
	var spare []byte
	for {
		select {
		case <-w.quit:
			return
		case <-w.kick:
		}
		w.mu.Lock()
		out := w.buf
		w.buf = spare[:0]
		w.mu.Unlock()
		if len(out) > 0 {
			if _, err := w.conn.Write(out); err != nil {
				w.fail(fmt.Errorf("write: %w", err))
				return
			}
		}
		spare = out
		if cap(spare) > maxSpare {
			spare = nil
		}
	}
}

// fail records the writer's terminal error for later senders.
func (w *coalescer) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// close stops the writer goroutine and waits for it; frames still pending
// are dropped. The connection must be closed first (or concurrently) if
// the writer may be blocked in a write.
func (w *coalescer) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closed = true
	if w.err == nil {
		w.err = errWriterClosed
	}
	w.mu.Unlock()
	close(w.quit)
	<-w.done
}

// grow returns buf with room for n more bytes, at least doubling its
// capacity when it has to reallocate, so that a pending buffer reaches its
// working size in a few steps (append grows large slices by only 25%).
func grow(buf []byte, n int) []byte {
	if cap(buf)-len(buf) >= n {
		return buf
	}
	nb := make([]byte, len(buf), max(2*cap(buf), len(buf)+n, 4096))
	copy(nb, buf)
	return nb
}
