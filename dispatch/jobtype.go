package dispatch

import "github.com/banfleet/banfleet/protocol"

// jobType is the master's state for one job type: the jobs waiting for it and the
// worker classes (class.go) that serve it. An entry lives only while it has either:
// dropIfIdleLocked removes it when its queue empties with no class serving it, and when
// the last class serving it goes. So a type that is neither served nor queued costs
// nothing, however many distinct types callers have used. All fields are guarded by
// Master.mu.
type jobType struct {
	name    string
	action  string       // protocol.JobAction(name), built once per entry: admitLocked hands it to each job
	tm      *typeMetrics // its metric attribute sets (metrics.go), handed to each job likewise
	queue   fifo
	serving []classLink // the classes whose workers announced this type
}

// classLink is one class serving a type, and where the type sits in that class's
// waiting list: -1 while the type has nothing queued.
type classLink struct {
	class  *workerClass
	waitAt int
}

// typeLocked returns the entry of typ, making it if there is none.
func (m *Master) typeLocked(typ string) *jobType {
	jt := m.types[typ]
	if jt == nil {
		jt = &jobType{name: typ, action: protocol.JobAction(typ), tm: m.metrics.typeMetricsLocked(typ)}
		m.types[typ] = jt
	}
	return jt
}

// dropIfIdleLocked forgets jt when nothing waits for it and nobody serves it.
func (m *Master) dropIfIdleLocked(jt *jobType) {
	if jt.queue.n == 0 && len(jt.serving) == 0 && m.types[jt.name] == jt {
		delete(m.types, jt.name)
	}
}

// enqueueLocked queues j on its type, behind the others or, for a job that has waited
// already, ahead of them.
func (m *Master) enqueueLocked(jt *jobType, j *job, front bool) {
	if front {
		jt.queue.pushFront(j)
	} else {
		jt.queue.push(j)
	}
	m.queuedBytes += j.queuedSize()
	if jt.queue.n == 1 {
		jt.startWaiting()
	}
}

// dequeueLocked unlinks j, queued on jt: popped for a worker, or leaving.
func (m *Master) dequeueLocked(jt *jobType, j *job) {
	jt.queue.remove(j)
	m.queuedBytes -= j.queuedSize()
	if jt.queue.n == 0 {
		jt.stopWaiting()
		m.dropIfIdleLocked(jt)
	}
}

// unqueueLocked takes a queued job out of its type's queue (stopped, or resolved by
// Close). The caller changes its state.
func (m *Master) unqueueLocked(j *job) {
	if jt := m.types[j.typ]; jt != nil {
		m.dequeueLocked(jt, j)
	}
}

// startWaiting enters jt, whose queue has just got its first job, into the waiting
// list of every class serving it, so that a slot freed in one of them finds the job.
func (jt *jobType) startWaiting() {
	for i := range jt.serving {
		l := &jt.serving[i]
		l.waitAt = len(l.class.waiting)
		l.class.waiting = append(l.class.waiting, jt)
	}
}

// stopWaiting takes jt, whose queue has just emptied, out of those waiting lists.
func (jt *jobType) stopWaiting() {
	for i := range jt.serving {
		l := &jt.serving[i]
		l.class.unwait(l.waitAt)
		l.waitAt = -1
	}
}

// link returns jt's link to c, or nil. Types are served by few classes, usually one.
func (jt *jobType) link(c *workerClass) *classLink {
	for i := range jt.serving {
		if jt.serving[i].class == c {
			return &jt.serving[i]
		}
	}
	return nil
}
