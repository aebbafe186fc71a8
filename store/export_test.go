package store

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
)

// pendingCount is how many calls wait for the committer.
func (b *Bolt) pendingCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// waitForPending lets the goroutines that are about to queue run.
func waitForPending() { runtime.Gosched() }

func testLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// isClosing reports whether Close has begun.
func (b *Bolt) isClosing() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closing
}

// crash stops the store as a kill -9 would leave it: the committer finishes what it
// took, but there is no last checkpoint, and the log stays for the next open.
func (b *Bolt) crash() {
	b.crashed = true
	b.Close()
}

// checkpointNow runs a checkpoint at once, as the checkpointer's timer would.
func (b *Bolt) checkpointNow() error { return b.checkpoint() }

// rotateNow runs a checkpoint that moves the log to a new segment, as one does once
// the segment passes WithWALSize.
func (b *Bolt) rotateNow() error { return b.checkpointRotating(true) }

// segments lists the store's log segments.
func (b *Bolt) segments(t testing.TB) []string {
	t.Helper()
	segs, err := listSegments(b.path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range segs {
		out = append(out, s.path)
	}
	return out
}

// dirtyRows is how many job rows the next checkpoint writes or deletes. Read it only
// between commits (after an Apply returned, none running).
func (b *Bolt) dirtyRows() int { return len(b.dirtyJobs) }
