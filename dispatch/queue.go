package dispatch

// fifo is one job type's queue of jobs waiting for a worker. Cancelled jobs are removed
// lazily: they stay in the slice, marked, and are skipped when popped; n counts the live
// ones, which is what the queue bound and Stats see.
type fifo struct {
	action string // JobAction of the type, built once
	jobs   []*job
	head   int
	n      int
}

func (q *fifo) push(j *job) {
	q.jobs = append(q.jobs, j)
	q.n++
}

// pushFront queues j ahead of the others (a retried or handed-back job has waited
// already).
func (q *fifo) pushFront(j *job) {
	if q.head > 0 {
		q.head--
		q.jobs[q.head] = j
	} else {
		q.jobs = append([]*job{j}, q.jobs...)
	}
	q.n++
}

// pop returns the oldest live job, or nil.
func (q *fifo) pop() *job {
	for q.head < len(q.jobs) {
		j := q.jobs[q.head]
		q.jobs[q.head] = nil
		q.head++
		if q.head == len(q.jobs) || q.head > 1024 && q.head*2 > len(q.jobs) {
			q.jobs = append(q.jobs[:0], q.jobs[q.head:]...)
			q.head = 0
		}
		if j.state == stateQueued {
			q.n--
			return j
		}
	}
	return nil
}

// removed is called when a queued job leaves the queue by other means (cancelled).
func (q *fifo) removed() { q.n-- }
