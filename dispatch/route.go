package dispatch

import (
	"slices"

	"github.com/banfleet/banfleet/banio"
)

// workerState is the master's view of one connected worker. Its mutable fields are
// guarded by Master.mu.
type workerState struct {
	conn     *banio.BanConn
	info     WorkerInfo
	inflight int
	draining bool
}

// capable reports whether w takes jobs of type typ now.
func (w *workerState) capable(typ string) bool {
	return !w.draining && w.inflight < w.info.Capacity && slices.Contains(w.info.Types, typ) && !w.conn.IsClosed()
}

// pickLocked chooses the least-loaded capable worker (in-flight / capacity), taking
// turns among equally loaded ones. nil when none is free.
func (m *Master) pickLocked(typ string) *workerState {
	n := len(m.workers)
	var best *workerState
	for i := range n {
		w := m.workers[(m.rr+i)%n]
		if !w.capable(typ) {
			continue
		}
		// Compare loads as fractions without floats: a/b < c/d ⇔ a·d < c·b.
		if best == nil || w.inflight*best.info.Capacity < best.inflight*w.info.Capacity {
			best = w
		}
	}
	if best != nil {
		m.rr++
	}
	return best
}

// startLocked dispatches j to w.
func (m *Master) startLocked(j *job, w *workerState) {
	j.state = stateRunning
	j.attempt++
	j.worker = w
	w.inflight++
	j.slot = w
	go m.sendAttempt(j, w, j.attempt)
}

// pumpLocked dispatches queued jobs of the given types while capable workers are free.
func (m *Master) pumpLocked(types []string) {
	for _, typ := range types {
		q := m.queues[typ]
		for q != nil && q.n > 0 {
			w := m.pickLocked(typ)
			if w == nil {
				break
			}
			j := q.head
			q.remove(j)
			m.startLocked(j, w)
		}
	}
}

// register records a worker's announcement (again after a reconnect: a new connection
// is a new worker to the master; its old connection's jobs were re-dispatched).
func (m *Master) register(c *banio.BanConn, info WorkerInfo) {
	info.Remote = c.GetRemote()
	info.Capacity = max(info.Capacity, 1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.IsClosed() {
		return // forgetWorker may already have run for this connection
	}
	if w := m.byConn[c]; w != nil {
		w.info = info
	} else {
		w = &workerState{conn: c, info: info}
		m.byConn[c] = w
		m.workers = append(m.workers, w)
	}
	m.opts.logger.Info("dispatch: worker registered", "id", info.ID, "name", info.Name, "capacity", info.Capacity, "types", info.Types)
	m.pumpLocked(info.Types)
}

// drain stops routing new jobs to the worker on c.
func (m *Master) drain(c *banio.BanConn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.byConn[c]; w != nil {
		w.draining = true
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
	m.opts.logger.Info("dispatch: worker gone", "id", w.info.ID, "inflight", w.inflight)
}
