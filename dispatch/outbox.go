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
	m     *Master
	sends []startedAttempt // attempts started since the lock was last released
}

// startedAttempt is an attempt whose envelope is still to be sent.
type startedAttempt struct {
	j *job
	w *workerState
	n int
}

// sendLocked notes an attempt to send once the lock is released. The lock must be held.
func (l *masterMu) sendLocked(j *job, w *workerState, n int) {
	l.sends = append(l.sends, startedAttempt{j, w, n})
}

// Unlock releases the lock and sends the attempts started under it.
func (l *masterMu) Unlock() {
	if len(l.sends) == 0 {
		l.Mutex.Unlock()
		return
	}
	sends := l.sends
	l.sends = nil
	l.Mutex.Unlock()
	for i, s := range sends {
		l.m.sendAttempt(s.j, s.w, s.n)
		sends[i] = startedAttempt{}
	}
}
