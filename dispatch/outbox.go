package dispatch

import "sync"

// masterMu is the master's lock, and the outbox of the attempts started under it.
// startLocked only notes an attempt; whoever releases the lock sends the envelopes it
// finds noted, after releasing it, on its own goroutine: no goroutine per attempt, and
// no envelope encoded under the lock. Every path that starts an attempt releases the
// lock eventually, so none is left unsent. Sending never blocks (sendAttempt), so it
// may run on a connection's read loop, a timer or the store's committer.
type masterMu struct {
	sync.Mutex
	m *Master
	// The attempts started since the lock was last released, in order: the first in
	// a field of its own, since one is the usual number and a slice of one was an
	// allocation per job.
	first startedAttempt
	more  []startedAttempt
}

// startedAttempt is an attempt whose envelope is still to be sent.
type startedAttempt struct {
	j *job
	w *workerState
	n int
}

// sendLocked notes an attempt to send once the lock is released. The lock must be held.
func (l *masterMu) sendLocked(j *job, w *workerState, n int) {
	if l.first.j == nil {
		l.first = startedAttempt{j, w, n}
		return
	}
	l.more = append(l.more, startedAttempt{j, w, n})
}

// Unlock releases the lock and sends the attempts started under it.
func (l *masterMu) Unlock() {
	if l.first.j == nil {
		l.Mutex.Unlock()
		return
	}
	first, more := l.first, l.more
	l.first, l.more = startedAttempt{}, nil
	l.Mutex.Unlock()
	l.m.sendAttempt(first.j, first.w, first.n)
	for i, s := range more {
		l.m.sendAttempt(s.j, s.w, s.n)
		more[i] = startedAttempt{}
	}
}
