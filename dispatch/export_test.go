package dispatch

import (
	"fmt"
	"slices"
)

// Test hooks into the master's routing and queue state, for tests that assert on what
// the master retains and how much routing looks at, rather than on heap numbers or
// timings.

// QueueRetention reports what the master's queues hold on to: the jobs linked in them,
// counted by walking the lists rather than read from the counters, and the per-type
// entries.
func QueueRetention(m *Master) (jobs, types int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, jt := range m.types {
		for j := jt.queue.head; j != nil; j = j.qnext {
			jobs++
		}
	}
	return jobs, len(m.types)
}

// RouteSteps returns how many worker classes and waiting types routing has looked at.
func RouteSteps(m *Master) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.routeSteps
}

// RoutableWorkers returns, sorted, the IDs of the workers the index would route a job
// of typ to when they have room.
func RoutableWorkers(m *Master, typ string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	if jt := m.types[typ]; jt != nil {
		for _, l := range jt.serving {
			for _, w := range l.class.free {
				ids = append(ids, w.info.ID)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// IndexError checks the routing index and the queues against each other and returns
// the first inconsistency found, or nil.
func IndexError(m *Master) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var bytes int64
	for name, jt := range m.types {
		if jt.name != name {
			return fmt.Errorf("type %q filed under %q", jt.name, name)
		}
		n, size := 0, int64(0)
		var prev *job
		for j := jt.queue.head; j != nil; j = j.qnext {
			if j.qprev != prev || j.state != stateQueued || j.typ != name {
				return fmt.Errorf("type %q: job %s badly linked or not queued (state %d)", name, j.id, j.state)
			}
			n, size, prev = n+1, size+j.queuedSize(), j
		}
		if jt.queue.tail != prev || jt.queue.n != n || jt.queue.bytes != size {
			return fmt.Errorf("type %q: %d jobs of %d bytes linked, counted %d of %d", name, n, size, jt.queue.n, jt.queue.bytes)
		}
		bytes += size
		if n == 0 && len(jt.serving) == 0 {
			return fmt.Errorf("type %q kept with nothing queued and nobody serving it", name)
		}
		for _, l := range jt.serving {
			if m.classes[l.class.key] != l.class || !slices.Contains(l.class.types, jt) {
				return fmt.Errorf("type %q linked to a class that does not list it", name)
			}
			if (n > 0) != (l.waitAt >= 0) || l.waitAt >= 0 && l.class.waiting[l.waitAt] != jt {
				return fmt.Errorf("type %q with %d queued: wrong place %d in a class's waiting list", name, n, l.waitAt)
			}
		}
	}
	if bytes != m.queuedBytes {
		return fmt.Errorf("queues hold %d bytes, counted %d", bytes, m.queuedBytes)
	}
	members := map[*workerClass]int{}
	for _, w := range m.workers {
		if w.class == nil || m.classes[w.class.key] != w.class {
			return fmt.Errorf("worker %s in no live class", w.info.ID)
		}
		members[w.class]++
		if inHeap := w.heapAt >= 0 && w.heapAt < len(w.class.free) && w.class.free[w.heapAt] == w; inHeap == w.draining && !w.conn.IsClosed() {
			return fmt.Errorf("worker %s (draining %v) in its class's heap: %v", w.info.ID, w.draining, inHeap)
		}
	}
	for _, c := range m.classes {
		if members[c] != c.members || c.members == 0 {
			return fmt.Errorf("class of %d types: %d members counted, %d registered", len(c.types), c.members, members[c])
		}
		for i, w := range c.free {
			if w.heapAt != i || i > 0 && routesBefore(w, c.free[(i-1)/2]) {
				return fmt.Errorf("class heap out of order at %d", i)
			}
		}
		for _, jt := range c.waiting {
			if jt.queue.n == 0 || m.types[jt.name] != jt {
				return fmt.Errorf("type %q waiting in a class with nothing queued", jt.name)
			}
		}
	}
	return nil
}

// Retained reports how many outcomes the master retains and the bytes they count.
func Retained(m *Master) (n int, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.retained.n, m.retained.bytes
}

// CallerGone reports whether the remote caller that owns the unresolved job id has
// lost its connection; ok is false when the master holds no such remote job.
func CallerGone(m *Master, id string) (gone, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j := m.jobs[id]
	if j == nil || j.remote() == nil {
		return false, false
	}
	return j.remote().gone, true
}

// RemoteCaller identifies the remote caller that owns the unresolved job id (nil when
// the master holds no such remote job), for tests that wait for a re-attach to take a
// job over.
func RemoteCaller(m *Master, id string) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	if j := m.jobs[id]; j != nil && j.remote() != nil {
		return j.remote()
	}
	return nil
}

// ClientDown reports whether the Client knows its connection to the master is lost.
func ClientDown(c *Client) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down
}

// PayloadHashed reports whether the master hashed the payload of the job it holds
// under id, unresolved or retained, for the conflict check of a resubmitted id; found
// is false when it holds none.
func PayloadHashed(m *Master, id string) (hashed, found bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if j := m.jobs[id]; j != nil {
		return !j.unhashed, true
	}
	if o, ok := m.retained.get(id, instantNow()); ok {
		return !o.unhashed, true
	}
	return false, false
}
