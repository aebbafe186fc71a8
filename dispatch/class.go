package dispatch

import (
	"encoding/binary"
	"slices"
)

// workerClass groups the workers that announced the same set of job types. It is the
// routing index: a type lists the classes serving it (jobType.serving), and a class
// keeps its routable workers in a heap, least loaded first. Workers of one binary
// share a class, so the index costs memory per distinct set of types rather than per
// worker and type, a type is usually served by a single class, and picking a worker
// for a job is a look at that class's heap top whatever the number of types announced.
// All fields are guarded by Master.mu.
type workerClass struct {
	key     string     // the type set, encoded by classKey: Master.classes' key
	types   []*jobType // the type set, sorted by name
	members int        // its registered workers, draining ones included
	free    workerHeap // its routable workers (not draining), least loaded first
	waiting []*jobType // its types that have queued jobs; see jobType.startWaiting
	turn    int        // rotates pumping over waiting, so that no type starves
}

// classKey encodes a sorted, duplicate-free type set as one string, each name behind
// its length so that no two sets encode alike whatever bytes the names hold.
func classKey(names []string) string {
	n := 0
	for _, s := range names {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range names {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return string(b)
}

// classLocked returns the class of workers announcing types, making it (and linking
// it to its types) if there is none. Called on registration only: O(t log t) in the
// number of types announced.
func (m *Master) classLocked(types []string) *workerClass {
	names := slices.Clone(types)
	slices.Sort(names)
	names = slices.Compact(names)
	key := classKey(names)
	if c := m.classes[key]; c != nil {
		return c
	}
	c := &workerClass{key: key, types: make([]*jobType, len(names))}
	for i, name := range names {
		jt := m.typeLocked(name)
		l := classLink{class: c, waitAt: -1}
		if jt.queue.n > 0 {
			l.waitAt = len(c.waiting)
			c.waiting = append(c.waiting, jt)
		}
		jt.serving = append(jt.serving, l)
		c.types[i] = jt
	}
	m.classes[key] = c
	return c
}

// joinLocked makes w a member of c, routable unless it drains.
func (m *Master) joinLocked(w *workerState, c *workerClass) {
	w.class = c
	c.members++
	if !w.draining && !w.gone {
		c.free.push(w)
	}
}

// leaveLocked takes w out of its class, and drops the class when it was the last.
func (m *Master) leaveLocked(w *workerState) {
	c := w.class
	if c == nil {
		return
	}
	if w.heapAt >= 0 {
		c.free.remove(w.heapAt)
	}
	w.class = nil
	c.members--
	if c.members > 0 {
		return
	}
	delete(m.classes, c.key)
	for _, jt := range c.types {
		if l := jt.link(c); l != nil {
			*l = jt.serving[len(jt.serving)-1]
			jt.serving[len(jt.serving)-1] = classLink{}
			jt.serving = jt.serving[:len(jt.serving)-1]
		}
		m.dropIfIdleLocked(jt)
	}
}

// unwait removes the waiting type at index i, moving the last one into its place.
func (c *workerClass) unwait(i int) {
	last := len(c.waiting) - 1
	if i != last {
		moved := c.waiting[last]
		c.waiting[i] = moved
		moved.link(c).waitAt = i
	}
	c.waiting[last] = nil
	c.waiting = c.waiting[:last]
}

// nextWaiting returns one of c's types that have queued jobs, taking turns; nil when
// none has.
func (c *workerClass) nextWaiting() *jobType {
	if len(c.waiting) == 0 {
		return nil
	}
	c.turn = (c.turn + 1) % len(c.waiting)
	return c.waiting[c.turn]
}
