package dispatch

import (
	"errors"
	"fmt"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/store"
)

// Orphaned attempts. A durable master that starts finds some jobs running: their
// attempts were under way when the last master died, and the workers running them
// keep them (a worker keeps its jobs, and holds their replies, while its master is
// away). Such a job is an orphan, in no queue, until the worker that ran it
// re-registers and claims it (WorkerInfo.Held): then it is that worker's attempt again,
// and its reply resolves it as if nothing had happened. What a re-registering worker
// does not claim of its orphans it no longer has, and what no worker claims within the
// orphan grace (WithOrphanGrace) is given up: those go back to their queues with an
// AttemptEnded record that costs no attempt, since it was the master that failed.

// DefaultOrphanGrace is how long a restarted durable master waits for the workers that
// ran its orphaned attempts to come back and claim them before it runs those jobs
// again (WithOrphanGrace): 30 seconds, more than a worker takes to reconnect (banio's
// reconnect backoff reaches 10 s pauses), and little against running a long job twice.
const DefaultOrphanGrace = 30 * time.Second

// WithOrphanGrace sets how long a restarted durable master waits for its orphaned
// attempts to be claimed (default DefaultOrphanGrace). Orphans of a worker that
// re-registers are settled then, whatever the grace. d <= 0 runs every orphan again at
// once.
func WithOrphanGrace(d time.Duration) Option {
	return func(o *options) { o.orphanGrace = d }
}

// orphanLocked makes j, restored as running, an orphan of worker. m.mu must be held.
func (m *Master) orphanLocked(j *job, worker string) {
	j.state, j.orphanOf = stateOrphan, worker
	set := m.orphans[worker]
	if set == nil {
		set = make(map[*job]struct{})
		m.orphans[worker] = set
	}
	set[j] = struct{}{}
}

// unorphanLocked takes j out of the orphans; the caller changes its state.
func (m *Master) unorphanLocked(j *job) {
	if set := m.orphans[j.orphanOf]; set != nil {
		delete(set, j)
		if len(set) == 0 {
			delete(m.orphans, j.orphanOf)
		}
	}
}

// claimsLocked settles the attempts a registering worker w says it holds: those that
// are its orphans are adopted (returned, for their waits to be set up once m.mu is
// released), the running ones the master does not want are returned to be cancelled,
// and w's other orphans are given up. m.mu must be held; w is registered.
func (m *Master) claimsLocked(w *workerState, held []protocol.HeldAttempt) (adopted []*attempt, unwanted []protocol.HeldAttempt) {
	held = held[:min(len(held), protocol.MaxHeldAttempts)]
	for _, h := range held {
		j := m.jobs[h.ID]
		if j != nil && j.state == stateRunning && int(j.adopted) == h.Attempt && j.attempt == h.Attempt &&
			j.worker != w && j.worker.info.ID == w.info.ID {
			// Re-adopted on an earlier connection of this worker that the master has
			// not seen close yet: the worker left it, and claims the attempt here.
			m.goneLocked(j.worker)
			m.releaseLocked(j, j.worker, instantNow())
			j.state, j.orphanOf = stateOrphan, w.info.ID
		}
		if j != nil && j.state == stateOrphan && j.attempt == h.Attempt && j.orphanOf == w.info.ID {
			m.unorphanLocked(j)
			j.adopted = int32(j.attempt)
			j.state, j.worker, j.slot = stateRunning, w, w
			w.inflight++
			if w.heapAt >= 0 {
				w.class.free.fix(w.heapAt)
			}
			adopted = append(adopted, &attempt{m: m, j: j, w: w, n: j.attempt})
			continue
		}
		mine := j != nil && j.state == stateRunning && j.worker == w && j.attempt == h.Attempt
		if !h.Done && !mine {
			unwanted = append(unwanted, h)
		}
	}
	for j := range m.orphans[w.info.ID] {
		m.giveUpOrphanLocked(j, fmt.Sprintf("orphaned when the master restarted; its worker %s came back without it", w.info.ID))
	}
	return adopted, unwanted
}

// adopt makes the adopted attempts wait for their replies on w's connection, which the
// worker sends right after its registration (the registration is handled on the read
// loop, so these waits exist before the replies are read). The attempts the master
// does not want register has cancelled already.
func (m *Master) adopt(w *workerState, adopted []*attempt) {
	for _, a := range adopted {
		key, err := w.conn.SetWaitFunc(attemptKey(a.j.id, a.n), a.adoptedDone)
		if err != nil {
			go a.WaitDone(nil, err)
			continue
		}
		if a.j.endErr() != nil {
			// Stopped before the wait existed, so jobStopped could not end it.
			go w.conn.CloseWaitChan(key)
		}
		m.opts.logger.Debug("dispatch: orphaned attempt re-adopted", "job", a.j.id, "attempt", a.n, "worker", w.info.ID)
	}
}

// adoptedDone is the wait callback of a re-adopted attempt. Its held reply follows
// the registration on the same connection; a connection lost before it came says
// nothing against the worker, which holds the reply still and claims the attempt
// again on its next registration. That happens when a worker reconnects to a
// restarting master's listener and gives up on it (its heartbeat) before the master
// serves the connection: the master reads the registration that sat in the socket, and
// then the end of the connection. Such an attempt becomes the worker's orphan again,
// rather than running a second time while the worker that ran it is alive.
// An attempt claimed since on a newer connection of the worker is no longer this
// wait's: its failure is dropped.
func (a *attempt) adoptedDone(data []byte, err error) {
	if err != nil && errors.Is(err, banio.ErrConnClosed) && a.j.endErr() == nil {
		switch a.m.reorphan(a) {
		case reorphaned, claimedElsewhere:
			return
		}
	}
	a.WaitDone(data, err)
}

// What reorphan did with a re-adopted attempt whose connection was lost.
const (
	notReorphaned    = iota // the job moved on (resolved, stopped): the attempt ends as usual
	reorphaned              // the job is its worker's orphan again
	claimedElsewhere        // the worker claimed the attempt on a newer connection
)

// reorphan makes the adopted attempt a, whose connection was lost before its reply
// came, an orphan of its worker again, given up if no claim comes within a new orphan
// grace.
func (m *Master) reorphan(a *attempt) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, w := a.j, a.w
	if !m.closed && j.attempt == a.n && j.worker != w && j.worker.info.ID == w.info.ID &&
		(j.state == stateRunning || j.state == stateOrphan) {
		return claimedElsewhere
	}
	if m.closed || j.state != stateRunning || j.worker != w || j.attempt != a.n {
		return notReorphaned
	}
	m.goneLocked(w)
	m.releaseLocked(j, w, instantNow())
	m.orphanLocked(j, w.info.ID)
	if m.orphanTimer == nil {
		m.orphanTimer = time.AfterFunc(max(m.opts.orphanGrace, 0), m.orphanGraceOver)
	} else {
		m.orphanTimer.Reset(max(m.opts.orphanGrace, 0))
	}
	m.opts.logger.Debug("dispatch: re-adopted attempt orphaned again: its connection closed before its reply", "job", j.id, "attempt", a.n, "worker", w.info.ID)
	return reorphaned
}

// giveUpOrphanLocked sends orphan j back to its queue (or to a free worker), at no
// cost in attempts. m.mu must be held.
func (m *Master) giveUpOrphanLocked(j *job, reason string) {
	m.unorphanLocked(j)
	m.recordLocked(j, store.AttemptEnded(j.id, j.attempt, false, reason))
	j.lastErr = fmt.Errorf("%w: %s", ErrWorkerLost, reason)
	m.runOrQueueLocked(j, true)
}

// orphanGraceOver gives up every orphan still unclaimed.
func (m *Master) orphanGraceOver() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	n := 0
	for worker, set := range m.orphans {
		for j := range set {
			m.giveUpOrphanLocked(j, fmt.Sprintf("orphaned when the master restarted; its worker %s did not claim it within %v", worker, m.opts.orphanGrace))
			n++
		}
	}
	if n > 0 {
		m.opts.logger.Info("dispatch: orphaned attempts not claimed within the grace run again", "jobs", n, "grace", m.opts.orphanGrace)
	}
}
