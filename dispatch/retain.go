package dispatch

import (
	"hash/maphash"
	"log/slog"
	"time"
)

// Retained outcomes: what makes job ids idempotent after their job ended. A resolved
// job's outcome (result or error) stays for the retention period, so that a
// submission of the same id, or a Client re-attaching after a reconnect, collects it
// instead of running the job again. The store is a FIFO in resolution order: with one
// retention period for all, the oldest outcome is also the first to expire, and the
// first dropped when the count or byte bound is met. Results are kept outside the
// collected heap (resultring.go) and copied out when asked for. Everything is guarded
// by Master.mu.

// outcome is a resolved job as the master retains it.
type outcome struct {
	id   string
	typ  string
	hash uint64 // payloadHash of the job
	// result is the job's result. Retained, it is nil and the result lies in the
	// retainStore's ring at span, unless the ring could not be mapped; get fills it in
	// with a copy.
	result  []byte
	span    ringSpan
	err     error
	expires int64 // Unix nanoseconds
	size    int64 // what it counts against the byte bound
	// unhashed: loaded from a store, which keeps no payload of a resolved job, so a
	// resubmission is checked against its type only.
	unhashed bool
}

// retainedOverhead is what a retained outcome counts on top of its id, type, result
// and error text: about its ring slot and map entry.
const retainedOverhead = 128

// retainStore is the ring of retained outcomes and their index by id.
type retainStore struct {
	ttl      time.Duration
	maxN     int
	maxBytes int64

	ring    []outcome
	head, n int
	headSeq uint64            // sequence number of ring[head]
	byID    map[string]uint64 // id → sequence number of its outcome
	bytes   int64
	results resultRing // the retained outcomes' results, off the heap
	closed  bool       // the master closed: nothing is retained any more
	// mapFailed: the ring could not be mapped (logged once); results stay on the heap.
	mapFailed bool
	timer     *time.Timer // releases expired outcomes when nothing else does
	armed     bool
	// forget, when set (a durable master), hears of every outcome forgotten, so that
	// the store forgets it too (a Collected record).
	forget func(id string)
}

func (s *retainStore) init(ttl time.Duration, maxN int, maxBytes int64) {
	s.ttl, s.maxN, s.maxBytes = ttl, maxN, maxBytes
	s.byID = make(map[string]uint64)
	s.results.size = int(min(maxBytes, int64(maxRingBytes)))
}

// maxRingBytes caps the ring's mapping where int is 32 bits wide; a byte bound beyond
// it is still honoured, the ring just frees the oldest results sooner.
const maxRingBytes = 1<<31 - 1

// enabled reports whether outcomes are retained at all.
func (s *retainStore) enabled() bool {
	return !s.closed && s.ttl > 0 && s.maxN > 0 && s.maxBytes > 0
}

// close forgets every outcome without telling the store (a durable master keeps them
// for its next start) and gives the ring back. The master calls it as it closes.
func (s *retainStore) close() {
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.ring, s.head, s.n, s.bytes = nil, 0, 0, 0
	s.byID = map[string]uint64{}
	s.results.release()
}

// add retains o until now plus the retention, dropping the oldest outcomes as the
// bounds require. An outcome larger than the whole byte bound is not retained. It
// reports whether o was.
func (s *retainStore) add(o outcome, now int64) bool {
	return s.addUntil(o, now, now+int64(s.ttl))
}

// addUntil is add with the expiry given: an outcome loaded from a store keeps the
// retention counted from its resolution. Outcomes must come in expiry order.
func (s *retainStore) addUntil(o outcome, now, expires int64) bool {
	if !s.enabled() || expires <= now {
		return false
	}
	o.size = int64(len(o.id)+len(o.typ)+len(o.result)) + retainedOverhead
	if o.err != nil {
		o.size += int64(len(o.err.Error()))
	}
	if o.size > s.maxBytes || len(o.result) > s.results.size {
		return false
	}
	s.expire(now)
	for s.n > 0 && (s.n >= s.maxN || s.bytes+o.size > s.maxBytes || !s.results.fits(len(o.result))) {
		s.dropHead()
	}
	if sp, err := s.results.put(o.result); err == nil {
		o.result, o.span = nil, sp
	} else if !s.mapFailed {
		// The result stays where it is, on the heap: correct, only dearer.
		s.mapFailed = true
		slog.Warn("dispatch: retained results are kept on the heap: their ring could not be mapped", "err", err)
	}
	if s.n == len(s.ring) {
		s.grow()
	}
	o.expires = expires
	seq := s.headSeq + uint64(s.n)
	s.ring[(s.head+s.n)%len(s.ring)] = o
	s.n++
	s.bytes += o.size
	s.byID[o.id] = seq
	return true
}

// grow doubles the ring, up to maxN slots.
func (s *retainStore) grow() {
	size := min(max(2*len(s.ring), 64), s.maxN)
	ring := make([]outcome, size)
	for i := range s.n {
		ring[i] = s.ring[(s.head+i)%len(s.ring)]
	}
	s.ring, s.head = ring, 0
}

// dropHead forgets the oldest outcome.
func (s *retainStore) dropHead() {
	o := &s.ring[s.head]
	if seq, ok := s.byID[o.id]; ok && seq == s.headSeq {
		delete(s.byID, o.id)
		if s.forget != nil {
			s.forget(o.id)
		}
	}
	s.bytes -= o.size
	if o.result == nil {
		s.results.free(o.span)
	}
	*o = outcome{}
	s.head = (s.head + 1) % len(s.ring)
	s.headSeq++
	s.n--
	if s.n == 0 {
		s.results.emptied() // an idle master gives the memory back
		if len(s.ring) > 64 {
			s.ring, s.head = nil, 0
		}
	}
}

// expire forgets the outcomes whose period has passed.
func (s *retainStore) expire(now int64) {
	for s.n > 0 && s.ring[s.head].expires <= now {
		s.dropHead()
	}
}

// get returns the outcome retained for id, with a copy of its result, and whether
// there is one. An expired outcome is not returned even before expire has dropped it.
func (s *retainStore) get(id string, now int64) (outcome, bool) {
	seq, ok := s.byID[id]
	if !ok || seq < s.headSeq || seq >= s.headSeq+uint64(s.n) {
		return outcome{}, false
	}
	o := s.ring[(s.head+int(seq-s.headSeq))%len(s.ring)]
	if o.id != id || o.expires <= now {
		return outcome{}, false
	}
	if o.result == nil {
		o.result = s.results.read(o.span)
	}
	return o, true
}

// retainLocked retains j's outcome, and reports whether it did. m.mu must be held.
func (m *Master) retainLocked(j *job, result []byte, err error) bool {
	s := &m.retained
	if !s.enabled() {
		return false
	}
	kept := s.add(outcome{id: j.id, typ: j.typ, hash: j.hash, result: result, err: err}, time.Now().UnixNano())
	m.armRetainLocked()
	return kept
}

// armRetainLocked arms the retention timer if outcomes are retained and it is not.
func (m *Master) armRetainLocked() {
	s := &m.retained
	if s.n > 0 && !s.armed {
		s.armed = true
		// Expired outcomes are forgotten an eighth of the period late at most, so
		// that a steady stream of jobs costs one timer firing per eighth, not one per
		// job. Lookups never see an expired outcome regardless.
		d := time.Duration(s.ring[s.head].expires-time.Now().UnixNano()) + s.ttl/8
		if s.timer == nil {
			s.timer = time.AfterFunc(d, m.expireRetained)
		} else {
			s.timer.Reset(d)
		}
	}
}

// expireRetained is the retention timer: it forgets expired outcomes and re-arms for
// the next one.
func (m *Master) expireRetained() {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &m.retained
	s.armed = false
	now := time.Now().UnixNano()
	s.expire(now)
	if s.n > 0 && !m.closed {
		s.armed = true
		s.timer.Reset(time.Duration(s.ring[s.head].expires-now) + s.ttl/8)
	}
}

// retainSeed keys payload hashes; one per process is enough, since hashes are only
// compared within it.
var retainSeed = maphash.MakeSeed()

// payloadHash identifies a job's payload for the conflict check of a resubmitted id.
func payloadHash(payload []byte) uint64 { return maphash.Bytes(retainSeed, payload) }
