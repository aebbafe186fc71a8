package dispatch

import (
	"context"
	"fmt"
)

// WaitWorkers blocks until at least n workers are registered with the master, or ctx
// ends; then it returns an error that wraps ctx's and says how many there were. It is
// how a program (or a test) that starts workers waits for them without polling.
func (m *Master) WaitWorkers(ctx context.Context, n int) error {
	for {
		m.mu.Lock()
		have, changed := len(m.workers), m.workersChangedLocked()
		m.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("dispatch: %d of %d workers registered: %w", have, n, ctx.Err())
		}
	}
}

// WorkersChanged returns a channel closed at the next change of the master's workers:
// a registration, a re-registration after a reconnect, a worker gone. Read Workers
// after it closes and ask again for the next change: it is how a program waits for a
// condition on the workers (a given worker registered, one lost) without polling.
func (m *Master) WorkersChanged() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.workersChangedLocked()
}

// workersChangedLocked returns a channel closed at the next change of the master's
// workers (a registration, a re-registration, a worker gone). m.mu must be held.
func (m *Master) workersChangedLocked() <-chan struct{} {
	if m.workersChanged == nil {
		m.workersChanged = make(chan struct{})
	}
	return m.workersChanged
}

// noteWorkersLocked wakes the waiters of workersChangedLocked. m.mu must be held.
func (m *Master) noteWorkersLocked() {
	if m.workersChanged != nil {
		close(m.workersChanged)
		m.workersChanged = nil
	}
}
