package dispatch

import "fmt"

// Test hooks into the master's routing and queue state, for tests that assert on what
// the master retains and how much routing looks at, rather than on heap numbers or
// timings.

// QueueRetention reports what the master's queues hold on to: the jobs linked in them,
// counted by walking the lists rather than read from the counters, and the per-type
// entries.
func QueueRetention(m *Master) (jobs, types int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, q := range m.queues {
		for j := q.head; j != nil; j = j.qnext {
			jobs++
		}
	}
	return jobs, len(m.queues)
}

// IndexError checks the queues against their counters and returns the first
// inconsistency found, or nil.
func IndexError(m *Master) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, q := range m.queues {
		n := 0
		var prev *job
		for j := q.head; j != nil; j = j.qnext {
			if j.qprev != prev || j.state != stateQueued || j.typ != name {
				return fmt.Errorf("type %q: job %s badly linked or not queued (state %d)", name, j.id, j.state)
			}
			n, prev = n+1, j
		}
		if q.tail != prev || q.n != n {
			return fmt.Errorf("type %q: %d jobs linked, counted %d", name, n, q.n)
		}
	}
	return nil
}
