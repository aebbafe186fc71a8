package dispatch

import (
	"hash/maphash"
	"log/slog"
	"strings"
	"time"

	"github.com/banfleet/banfleet/internal/circular"
)

// Retained outcomes: what makes job ids idempotent after their job ended. A resolved
// job's outcome (result or error) stays for the retention period, so that a
// submission of the same id, or a Client re-attaching after a reconnect, collects it
// instead of running the job again. The store is a FIFO in resolution order: with one
// retention period for all, the oldest outcome is also the first to expire, and the
// first dropped when the count or byte bound is met. Everything is guarded by
// Master.mu.
//
// A busy master retains 100,000 outcomes (DefaultRetainedJobs), so what each costs
// the collector matters more than its bytes: the id, type and result of every
// retained outcome lie in one byte ring outside the collected heap (bytering.go), its
// slot holds no pointer (the slots are not scanned), and the index is a hash table of
// the store's own over a hash of the id (retainindex.go), not a map by id string.
// Measured at 64 B with a string index, slots holding strings and results on the
// heap, retention was a tenth of the whole benchmark's CPU, most of it in map probes
// and the collector.

// outcome is a resolved job's outcome as it is given to the store and returned by it.
type outcome struct {
	id     string
	typ    string
	hash   uint64 // payloadHash of the job
	result []byte
	err    error
	// unhashed: loaded from a store, which keeps no payload of a resolved job, or the
	// outcome of a job whose id was made up for it (job.unhashed), so a resubmission is
	// checked against its type only.
	unhashed bool
}

// retainedSlot is one retained outcome in the ring of slots. It holds no pointer:
// its bytes are in the byte ring, its error (rare) in retainStore.errs.
type retainedSlot struct {
	key      uint64   // idKey of its id
	hash     uint64   // payloadHash of the job
	bytes    ringSpan // id, then type, then result, in retainStore.bytesRing
	idLen    uint32
	typLen   uint32
	expires  instant
	size     int64 // what it counts against the byte bound
	failed   bool  // its outcome is an error, in errs under its sequence number
	unhashed bool
}

// retainedOverhead is what a retained outcome counts on top of its id, type, result
// and error text: about its slot and index entry.
const retainedOverhead = 128

// retainStore is the ring of retained outcomes and their index by id.
type retainStore struct {
	ttl      time.Duration
	maxN     int
	maxBytes int64

	ring      []retainedSlot
	head, n   int
	headSeq   uint64           // sequence number of ring[head]
	index     retainIndex      // id → sequence number of its newest retained outcome
	errs      map[uint64]error // sequence number → the error of a failed outcome
	bytes     int64
	bytesRing byteRing    // the retained ids, types and results, off the heap
	closed    bool        // the master closed: nothing is retained any more
	mapFailed bool        // the byte ring could not be mapped (logged once): nothing is retained
	mapShrunk bool        // the byte ring was mapped smaller than the byte bound (logged once)
	timer     *time.Timer // releases expired outcomes when nothing else does
	armed     bool
	// forget, when set (a durable master), hears of every outcome forgotten, so that
	// the store forgets it too (a Collected record).
	forget func(id string)
}

func (s *retainStore) init(ttl time.Duration, maxN int, maxBytes int64) {
	s.ttl, s.maxN, s.maxBytes = ttl, maxN, maxBytes
	want := int(min(maxBytes, int64(maxRingBytes)))
	s.bytesRing = byteRing{want: want, size: want}
}

// maxRingBytes caps the byte ring's mapping where int is 32 bits wide; a byte bound
// beyond it is still honoured, the ring just frees the oldest outcomes sooner.
const maxRingBytes = 1<<31 - 1

// enabled reports whether outcomes are retained at all.
func (s *retainStore) enabled() bool {
	return !s.closed && !s.mapFailed && s.ttl > 0 && s.maxN > 0 && s.maxBytes > 0
}

// close forgets every outcome without telling the store (a durable master keeps them
// for its next start) and gives the byte ring back. The master calls it as it closes.
func (s *retainStore) close() {
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.ring, s.head, s.n, s.bytes = nil, 0, 0, 0
	s.index.reset()
	s.errs = nil
	s.bytesRing.release()
}

// idKey is the index key of a job id.
func idKey(id string) uint64 { return maphash.String(retainSeed, id) }

// retainKey is the key the store indexes an id by: idKey; tests make ids collide.
var retainKey = idKey

// add retains o until now plus the retention, dropping the oldest outcomes as the
// bounds require. An outcome larger than the whole byte bound is not retained. It
// reports whether o was.
func (s *retainStore) add(o outcome, now instant) bool {
	return s.addUntil(o, now, now.add(s.ttl))
}

// addUntil is add with the expiry given: an outcome loaded from a store keeps the
// retention counted from its resolution. Outcomes must come in expiry order.
func (s *retainStore) addUntil(o outcome, now, expires instant) bool {
	if !s.enabled() || expires <= now {
		return false
	}
	n := len(o.id) + len(o.typ) + len(o.result)
	size := int64(n) + retainedOverhead
	if o.err != nil {
		size += int64(len(o.err.Error()))
	}
	ringSize, err := s.bytesRing.ensure()
	if err != nil {
		s.mapFailed = true
		slog.Warn("dispatch: job outcomes are not retained: their memory could not be mapped; ids are idempotent only while their job is unresolved", "err", err)
		return false
	}
	if ringSize < s.bytesRing.want && !s.mapShrunk {
		s.mapShrunk = true
		slog.Warn("dispatch: retained outcomes get less memory than their byte bound: no more could be mapped", "bytes", ringSize, "bound", s.bytesRing.want)
	}
	if size > s.maxBytes || n > ringSize {
		return false
	}
	s.expire(now)
	for s.n > 0 && (s.n >= s.maxN || s.bytes+size > s.maxBytes || !s.bytesRing.fits(n)) {
		s.dropHead()
	}
	span := s.bytesRing.put(o.id, o.typ, o.result)
	if s.n == len(s.ring) {
		s.grow()
	}
	seq := s.headSeq + uint64(s.n)
	slot := retainedSlot{key: retainKey(o.id), hash: o.hash, bytes: span, idLen: uint32(len(o.id)), typLen: uint32(len(o.typ)),
		expires: expires, size: size, failed: o.err != nil, unhashed: o.unhashed}
	if o.err != nil {
		if s.errs == nil {
			s.errs = make(map[uint64]error)
		}
		s.errs[seq] = o.err
	}
	s.ring[(s.head+s.n)%len(s.ring)] = slot
	s.n++
	s.index.setLive(s.headSeq, s.n)
	s.bytes += size
	// An outcome retained for the same id before (loaded from a store) stays in the
	// ring until its turn, but lookups find the newest.
	if pos, ok := s.find(o.id, slot.key); ok {
		s.index.set(pos, seq)
	} else {
		s.index.insert(tagOf(slot.key), seq)
	}
	return true
}

// find returns the index position of id's newest retained outcome (key is its
// retainKey), and whether it has one.
func (s *retainStore) find(id string, key uint64) (pos uint32, ok bool) {
	tag := tagOf(key)
	for pos, ok = s.index.first(tag); ok; pos, ok = s.index.next(tag, pos) {
		if s.idAt(s.seqAt(pos)) == id {
			return pos, true
		}
	}
	return 0, false
}

// seqAt returns the sequence number of the outcome the index entry at pos names. Every
// indexed outcome is retained, and fewer than 2³² are: the entry's low 32 bits place
// it within the ring.
func (s *retainStore) seqAt(pos uint32) uint64 {
	return s.headSeq + uint64(entrySeq(s.index.entries[pos])-uint32(s.headSeq))
}

// slotAt returns the slot of the retained outcome seq.
func (s *retainStore) slotAt(seq uint64) *retainedSlot {
	return &s.ring[(s.head+int(seq-s.headSeq))%len(s.ring)]
}

// idAt returns the id of the retained outcome seq, aliasing the byte ring: compare it,
// never keep it.
func (s *retainStore) idAt(seq uint64) string {
	sl := s.slotAt(seq)
	return s.bytesRing.str(sl.bytes, 0, int(sl.idLen))
}

// grow doubles the ring of slots, up to maxN of them.
func (s *retainStore) grow() {
	s.ring, s.head = circular.Grown(s.ring, s.head, s.n, 64, s.maxN), 0
}

// dropHead forgets the oldest outcome. Its index entry dies as the live window moves
// past it (retainIndex); only a store that hears of forgotten outcomes removes it now,
// to learn whether it was indexed.
func (s *retainStore) dropHead() {
	sl := &s.ring[s.head]
	seq := s.headSeq
	// Not indexed: a newer outcome of the same id is, and the store keeps that one.
	if s.forget != nil && s.index.remove(tagOf(sl.key), seq) {
		s.forget(strings.Clone(s.idAt(seq))) // a copy: the ring's bytes are reused
	}
	if sl.failed {
		delete(s.errs, seq)
	}
	s.bytes -= sl.size
	s.bytesRing.free(sl.bytes)
	*sl = retainedSlot{}
	s.head = (s.head + 1) % len(s.ring)
	s.headSeq++
	s.n--
	s.index.setLive(s.headSeq, s.n)
	if s.n == 0 {
		s.bytesRing.emptied() // an idle master gives the memory back
		if len(s.ring) > 64 {
			s.ring, s.head = nil, 0
			s.index.reset()
		}
	}
}

// expire forgets the outcomes whose period has passed.
func (s *retainStore) expire(now instant) {
	for s.n > 0 && s.ring[s.head].expires <= now {
		s.dropHead()
	}
}

// get returns the outcome retained for id, with a copy of its result, and whether
// there is one. An expired outcome is not returned even before expire has dropped it.
func (s *retainStore) get(id string, now instant) (outcome, bool) {
	pos, ok := s.find(id, retainKey(id))
	if !ok {
		return outcome{}, false
	}
	seq := s.seqAt(pos)
	sl := s.slotAt(seq)
	if sl.expires <= now {
		return outcome{}, false
	}
	typ := s.bytesRing.str(sl.bytes, int(sl.idLen), int(sl.typLen))
	o := outcome{id: id, typ: strings.Clone(typ), hash: sl.hash, unhashed: sl.unhashed,
		result: s.bytesRing.read(sl.bytes, int(sl.idLen+sl.typLen))}
	if sl.failed {
		o.err = s.errs[seq]
	}
	return o, true
}

// retainLocked retains j's outcome, resolved now, and reports whether it did. m.mu
// must be held.
func (m *Master) retainLocked(j *job, result []byte, err error, now instant) bool {
	s := &m.retained
	if !s.enabled() {
		return false
	}
	kept := s.add(outcome{id: j.id, typ: j.typ, hash: j.hash, unhashed: j.unhashed, result: result, err: err}, now)
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
		d := s.ring[s.head].expires.sub(instantNow()) + s.ttl/8
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
	now := instantNow()
	s.expire(now)
	if s.n > 0 && !m.closed {
		s.armed = true
		s.timer.Reset(s.ring[s.head].expires.sub(now) + s.ttl/8)
	}
}

// retainSeed keys payload hashes; one per process is enough, since hashes are only
// compared within it.
var retainSeed = maphash.MakeSeed()

// payloadHash identifies a job's payload for the conflict check of a resubmitted id.
func payloadHash(payload []byte) uint64 { return maphash.Bytes(retainSeed, payload) }
