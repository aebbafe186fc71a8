package dispatch

import "fmt"

// roomLocked says whether j, about to wait on jt, fits the queue bounds: jobs per type
// (WithQueueLimit), bytes per type (WithQueueBytesPerType) and bytes across all types
// (WithQueueBytesTotal). Only admission checks them: a job queued again after an
// attempt was admitted already and is never refused for waiting once more.
func (m *Master) roomLocked(jt *jobType, j *job) error {
	o := &m.opts
	if jt.queue.n >= o.queueLimit {
		return fmt.Errorf("%w: %d jobs of type %q waiting, no capable worker free (the per-type limit is %d jobs: raise it with WithQueueLimit, or add workers)",
			ErrQueueFull, jt.queue.n, j.typ, o.queueLimit)
	}
	size := j.queuedSize()
	if jt.queue.bytes+size > o.queueBytesType {
		return fmt.Errorf("%w: a job of %d bytes would bring the queue of type %q to %d bytes, past its budget of %d bytes per type, no capable worker free (raise it with WithQueueBytesPerType, send large inputs as blobs, or add workers)",
			ErrQueueFull, size, j.typ, jt.queue.bytes+size, o.queueBytesType)
	}
	if m.queuedBytes+size > o.queueBytesAll {
		return fmt.Errorf("%w: a job of %d bytes of type %q would bring the master's queues to %d bytes, past their total budget of %d bytes, no capable worker free (raise it with WithQueueBytesTotal, send large inputs as blobs, or add workers)",
			ErrQueueFull, size, j.typ, m.queuedBytes+size, o.queueBytesAll)
	}
	return nil
}
