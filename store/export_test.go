package store

import (
	"io"
	"log/slog"
	"runtime"
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
