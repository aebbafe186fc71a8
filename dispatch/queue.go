package dispatch

// fifo is one job type's queue of jobs waiting for a worker: an intrusive doubly linked
// list through job.qprev/qnext. A job that leaves the queue other than to a worker
// (cancelled, timed out, the master closed) is unlinked at once, so the queue never
// holds a job it no longer owns and its payload is free for the collector as soon as
// the job resolves. A list rather than a compacted slice: removal is O(1) with no dead
// entries at all, pushFront is O(1) too, and linking costs no allocation, where a slice
// grows by copying and a bound on dead entries still keeps that many payloads alive.
//
// n and bytes count what is linked: the queue bounds, Stats and the byte budgets read
// them. All fields, and the links of the jobs in it, are guarded by Master.mu.
type fifo struct {
	head, tail *job
	n          int
	bytes      int64 // queuedSize of the jobs linked
}

// push queues j behind the others.
func (q *fifo) push(j *job) {
	j.qprev, j.qnext = q.tail, nil
	if q.tail != nil {
		q.tail.qnext = j
	} else {
		q.head = j
	}
	q.tail = j
	q.n++
	q.bytes += j.queuedSize()
}

// pushFront queues j ahead of the others (a retried or handed-back job has waited
// already).
func (q *fifo) pushFront(j *job) {
	j.qprev, j.qnext = nil, q.head
	if q.head != nil {
		q.head.qprev = j
	} else {
		q.tail = j
	}
	q.head = j
	q.n++
	q.bytes += j.queuedSize()
}

// remove unlinks j, which must be in q: the oldest when a worker takes it
// (pumpLocked), any when it leaves otherwise.
func (q *fifo) remove(j *job) {
	if j.qprev != nil {
		j.qprev.qnext = j.qnext
	} else {
		q.head = j.qnext
	}
	if j.qnext != nil {
		j.qnext.qprev = j.qprev
	} else {
		q.tail = j.qprev
	}
	j.qprev, j.qnext = nil, nil
	q.n--
	q.bytes -= j.queuedSize()
}

// queuedSize is what j counts against the queue byte budgets while it waits: the bytes
// its submitter chose (payload, ID, type) and QueuedJobOverhead for the master's record
// of it, so that many empty jobs are bounded as well as a few large ones.
func (j *job) queuedSize() int64 {
	return int64(len(j.payload)+len(j.id)+len(j.typ)) + QueuedJobOverhead
}
