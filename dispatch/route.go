package dispatch

import (
	"fmt"
	"slices"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/store"
)

// workerState is the master's view of one connected worker. Its mutable fields are
// guarded by Master.mu.
type workerState struct {
	conn     *banio.BanConn
	info     WorkerInfo
	inflight int
	draining bool
	gone     bool         // its connection was found closed: routable never again
	lost     int          // attempts running on it when its connection closed
	class    *workerClass // the workers announcing the same types; nil once forgotten
	heapAt   int          // index in class.free; -1 while not routable (draining, closed)
	lastPick uint64       // Master.picks when last given a job: round-robin on ties
	tally    workerTally  // its attempts and liveness, for the status page (insight.go)
}

// pickLocked chooses the least-loaded worker free to take a job of jt (in-flight /
// capacity), taking turns among equally loaded ones; nil when none is free. It looks
// at the heap top of each class serving jt: O(classes serving the type), whatever the
// number of types or workers.
func (m *Master) pickLocked(jt *jobType) *workerState {
	var best *workerState
	for _, l := range jt.serving {
		m.routeSteps++
		w := l.class.free.top()
		if w == nil || w.inflight >= w.info.Capacity {
			continue
		}
		if best == nil || routesBefore(w, best) {
			best = w
		}
	}
	return best
}

// startLocked dispatches j to w, now.
func (m *Master) startLocked(j *job, w *workerState, now instant) {
	j.state = stateRunning
	m.takeSlotLocked(j, w, now)
	if m.jn != nil && j.stored {
		// The envelope leaves once the store knows of the attempt (durable.go). The
		// callback runs on the store's committer, which the write must not hold up.
		// sendAttempt never blocks.
		n := j.attempt
		m.jn.recordThen(func(err error) {
			if err != nil {
				m.stall(j, w)
				return
			}
			m.sendAttempt(j, w, n)
		}, store.AttemptStarted(j.id, n, w.info.ID))
		return
	}
	m.mu.sendLocked(j, w, j.attempt) // sent once m.mu is released (outbox.go)
}

// stall holds back a job whose attempt the store refused to record (the store failed;
// the journal has said so): an attempt the store does not hold must not run, since
// after a restart nobody would know of it and the job would run again beside it. The
// job neither runs nor fails: it waits, as a job backing off does but with no timer, for
// its caller's context or timeout, or for the master to close; the store still holds
// it as it was, so the master's next start runs it, and remote callers ride through to
// that.
func (m *Master) stall(j *job, w *workerState) {
	m.mu.Lock()
	m.releaseLocked(j, w, instantNow())
	if j.state != stateRunning {
		m.mu.Unlock()
		return
	}
	j.state = stateBackoff
	m.mu.Unlock()
	if reason := j.endErr(); reason != nil {
		// Stopped while its attempt was being recorded: jobStopped found it running
		// with no wait to end, so the stop is acted on here.
		m.resolve(j, nil, reason)
	}
}

// takeSlotLocked gives j's next attempt one of w's slots, now, and notes how long it
// waited for it.
func (m *Master) takeSlotLocked(j *job, w *workerState, now instant) {
	j.startedAt, j.waited = now, now.sub(j.readyAt)
	m.metrics.jobDispatched(j.tm, j.waited)
	j.attempt++
	j.worker = w
	w.inflight++
	j.slot = w
	m.picks++
	w.lastPick = m.picks
	if w.heapAt >= 0 {
		w.class.free.fix(w.heapAt)
	}
}

// slotFreedLocked gives back one of w's slots, now, and fills it from the queues. Only
// w's load changed, and no other worker of its class took the waiting jobs (they were
// full, else pumping would have given them one), so only its class needs pumping.
func (m *Master) slotFreedLocked(w *workerState, now instant) {
	w.inflight--
	if w.heapAt >= 0 {
		w.class.free.fix(w.heapAt)
		m.pumpLocked(w.class, now)
	}
}

// pumpLocked gives queued jobs of c's types to c's free workers, taking turns among the
// types that have queued jobs (c.waiting); it never looks at the others. Only c's
// workers need looking at: pumping keeps every other worker serving a waiting type
// full (a job waits only when pickLocked found no worker free for it, and a slot freed
// or added anywhere is pumped at once), so a free worker of c is the least loaded for
// any of them. The jobs it dispatches start now.
func (m *Master) pumpLocked(c *workerClass, now instant) {
	for len(c.waiting) > 0 {
		w := c.free.top()
		if w == nil || w.inflight >= w.info.Capacity {
			return
		}
		jt := c.nextWaiting()
		m.routeSteps++
		j := jt.queue.head
		m.dequeueLocked(jt, j)
		m.startLocked(j, w, now)
	}
}

// register records a worker's announcement (again after a reconnect: a new connection
// is a new worker to the master; its old connection's jobs were re-dispatched), and
// settles the attempts it says it holds (orphan.go). It runs on the connection's read
// loop, so that the waits of re-adopted attempts exist before the held replies that
// follow the registration are read. A
// second announcement on the same connection replaces the first. One that names more
// job types than WithMaxWorkerTypes allows is refused and changes nothing: a truncated
// list would leave some of the types the worker subscribed to unserved with no sign of
// it, and which ones would be arbitrary.
func (m *Master) register(c *banio.BanConn, info WorkerInfo) error {
	if len(info.Types) > m.opts.maxWorkerTypes {
		return fmt.Errorf("worker %q announces %d job types, more than the %d a worker may (raise the master's limit with WithMaxWorkerTypes, or split the worker)",
			info.ID, len(info.Types), m.opts.maxWorkerTypes)
	}
	info.Remote = c.GetRemote()
	info.Capacity = max(info.Capacity, 1)
	held := info.Held
	info.Held = nil
	m.mu.Lock()
	if c.IsClosed() {
		m.mu.Unlock()
		return nil // forgetWorker may already have run for this connection
	}
	class := m.classLocked(info.Types)
	w := m.byConn[c]
	switch {
	case w == nil:
		m.picks++
		w = &workerState{conn: c, info: info, heapAt: -1, lastPick: m.picks}
		m.byConn[c] = w
		m.workers = append(m.workers, w)
		m.joinLocked(w, class)
	case w.class == class:
		w.info = info
		if w.heapAt >= 0 {
			class.free.fix(w.heapAt) // its capacity may have changed
		}
	default:
		m.leaveLocked(w) // after classLocked, which may share the old class's types
		w.info = info
		m.joinLocked(w, class)
	}
	m.noteWorkersLocked()
	adopted, unwanted := m.claimsLocked(w, held)
	m.opts.logger.Info("dispatch: worker registered", "id", info.ID, "name", info.Name, "capacity", info.Capacity, "types", info.Types,
		"held", len(held), "adopted", len(adopted))
	// The attempts w holds that the master does not want are cancelled ahead of the
	// envelopes pumped to it next, which leave once m.mu is released: a new attempt
	// can have the key of an unwanted one (a restarted master numbers from 1), and a
	// cancel arriving after it would stop it instead. sendCancel never blocks.
	for _, h := range unwanted {
		m.sendCancel(w, h.ID, h.Attempt)
	}
	m.pumpLocked(class, instantNow())
	m.mu.Unlock()
	m.adopt(w, adopted)
	return nil
}

// goneLocked takes w, whose connection was found closed, out of routing for good, so
// that the slots its lost attempts free are not filled with jobs for that connection.
// banio fails a closing connection's waits before it runs OnClose (forgetWorker), and
// each failed wait frees a slot: without this, the queue would hand every freed slot a
// job whose envelope could never leave. m.mu must be held.
func (m *Master) goneLocked(w *workerState) {
	w.gone = true
	if w.heapAt >= 0 {
		w.class.free.remove(w.heapAt)
	}
}

// drain stops routing new jobs to the worker on c.
func (m *Master) drain(c *banio.BanConn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.byConn[c]; w != nil {
		w.draining = true
		if w.heapAt >= 0 {
			w.class.free.remove(w.heapAt)
		}
	}
}

// forgetWorker drops the worker on a closed connection. Its running attempts fail on
// their own (WaitResult returns ErrConnClosed) and are re-dispatched.
func (m *Master) forgetWorker(c *banio.BanConn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.byConn[c]
	if w == nil {
		return
	}
	delete(m.byConn, c)
	m.workers = slices.DeleteFunc(m.workers, func(x *workerState) bool { return x == w })
	m.leaveLocked(w)
	m.noteWorkersLocked()
	// Its lost attempts have usually freed their slots by now (banio fails a
	// connection's waits before it runs OnClose), so inflight alone would say 0.
	m.opts.logger.Info("dispatch: worker gone", "id", w.info.ID, "attempts_lost", w.lost+w.inflight)
}
