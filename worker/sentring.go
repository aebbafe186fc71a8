package worker

import (
	"time"

	"github.com/banfleet/banfleet/internal/circular"
	"github.com/banfleet/banfleet/protocol"
)

// sentRing is the replies sent within the linger window, oldest first: when the
// connection is lost they are held (see WithReplyLinger), since any of them may not
// have reached the master. Bounded like heldSet, whose bounds they must fit on a loss
// anyway; the oldest give way first. The Worker's mu protects it.
//
// A reply of up to sentCopyMax bytes is remembered as a copy, in chunks of memory the
// collector does not scan, and its entry holds no pointer: a busy worker remembers
// 16,384 replies, and held by reference their ids, results and entries were most of
// the live heap, which every collection had to mark. In bench's dispatch-w4 at 64 B,
// where master, workers and client share one process, that was half of the
// collector's CPU (2 % of the whole). Copying a larger reply costs more than its
// collection does, so a larger one is kept by reference, whole, in big.
type sentRing struct {
	ents    []sentEntry // circular, oldest at head; grows up to maxN
	head, n int
	bytes   int // of the remembered replies, as heldReply.size counts them

	chunks  []sentChunk // the copies, oldest chunk first; the last is being filled
	spare   []byte      // an emptied chunk kept for the next one
	big     []heldReply // the replies kept by reference, oldest first
	bigHead int         // big[:bigHead] are dropped already
	chunkNo uint64      // number of chunks[0]; a chunk's number never changes

	maxN     int
	maxBytes int
	linger   time.Duration // 0: keep nothing
}

// sentEntry is one remembered reply. Its bytes (id, type, header, result) lie in
// chunk, at off, unless big says the reply is in sentRing.big.
type sentEntry struct {
	at                     time.Duration
	size                   int // heldReply.size
	attempt                int
	chunk                  uint64
	off                    int
	idLen, typLen, headLen int
	bodyLen                int
	big                    bool
}

// sentChunk is one chunk of copies and how many remembered replies lie in it.
type sentChunk struct {
	buf  []byte
	live int
}

// sentChunkSize is the size of a chunk of copies; sentCopyMax, the largest reply
// copied (id, type, header and result), fits a chunk many times over.
const (
	sentChunkSize = 64 << 10
	sentCopyMax   = 4 << 10
)

// push records r, sent at r.at, dropping what expired or no longer fits.
func (s *sentRing) push(r heldReply) {
	if s.linger <= 0 || r.size() > s.maxBytes || s.maxN <= 0 {
		return
	}
	s.expire(r.at)
	for s.n > 0 && (s.n >= s.maxN || s.bytes+r.size() > s.maxBytes) {
		s.pop()
	}
	if s.n == len(s.ents) {
		s.grow()
	}
	e := sentEntry{at: r.at, size: r.size(), attempt: r.key.attempt}
	if copied := len(r.key.id) + len(r.typ) + len(r.head) + len(r.body); copied > sentCopyMax {
		e.big = true
		s.big = append(s.big, r)
	} else {
		s.copyIn(&e, r, copied)
	}
	s.ents[(s.head+s.n)%len(s.ents)] = e
	s.n++
	s.bytes += e.size
}

// copyIn copies r's bytes (n of them) to the chunk being filled, or a new one, and
// notes where in e.
func (s *sentRing) copyIn(e *sentEntry, r heldReply, n int) {
	last := len(s.chunks) - 1
	if last < 0 || len(s.chunks[last].buf)+n > sentChunkSize {
		buf := s.spare
		if buf == nil {
			buf = make([]byte, 0, sentChunkSize)
		}
		s.spare = nil
		s.chunks = append(s.chunks, sentChunk{buf: buf})
		last++
	}
	c := &s.chunks[last]
	e.chunk, e.off = s.chunkNo+uint64(last), len(c.buf)
	e.idLen, e.typLen, e.headLen, e.bodyLen = len(r.key.id), len(r.typ), len(r.head), len(r.body)
	c.buf = append(append(append(append(c.buf, r.key.id...), r.typ...), r.head...), r.body...)
	c.live++
}

// expire drops the replies sent more than linger before now.
func (s *sentRing) expire(now time.Duration) {
	for s.n > 0 && now-s.ents[s.head].at > s.linger {
		s.pop()
	}
}

// pop drops the oldest reply, and the chunk it leaves empty or the reference it held.
func (s *sentRing) pop() {
	e := s.ents[s.head]
	s.bytes -= e.size
	s.head = (s.head + 1) % len(s.ents)
	s.n--
	if e.big {
		s.big[s.bigHead] = heldReply{} // let go of it
		s.bigHead++
		if s.bigHead == len(s.big) {
			s.big, s.bigHead = s.big[:0], 0
		} else if s.bigHead >= 64 && 2*s.bigHead >= len(s.big) {
			n := copy(s.big, s.big[s.bigHead:])
			clear(s.big[n:]) // the moved replies' old places
			s.big, s.bigHead = s.big[:n], 0
		}
		return
	}
	s.chunks[e.chunk-s.chunkNo].live--
	// Chunks empty in front are done with, but for the one being filled.
	for len(s.chunks) > 1 && s.chunks[0].live == 0 {
		if s.spare == nil {
			s.spare = s.chunks[0].buf[:0]
		}
		s.chunks[0] = sentChunk{}
		s.chunks = s.chunks[1:]
		s.chunkNo++
	}
	if len(s.chunks) == 1 && s.chunks[0].live == 0 {
		s.chunks[0].buf = s.chunks[0].buf[:0] // start it over
	}
}

// grow doubles the ring of entries, up to maxN of them.
func (s *sentRing) grow() {
	s.ents, s.head = circular.Grown(s.ents, s.head, s.n, 64, s.maxN), 0
}

// oldest returns the oldest reply remembered, as it was pushed (its wait key made
// again: it is the attempt's, protocol.AttemptKey, which is all register sends a held
// reply on). Only the oldest: the big replies are in push order, so the oldest entry's
// is the first of them.
func (s *sentRing) oldest() heldReply {
	e := s.ents[s.head]
	if e.big {
		return s.big[s.bigHead]
	}
	b := s.chunks[e.chunk-s.chunkNo].buf[e.off:]
	id := string(b[:e.idLen])
	b = b[e.idLen:]
	r := heldReply{key: jobKey{id: id, attempt: e.attempt}, typ: string(b[:e.typLen]),
		wait: protocol.AttemptKey(id, e.attempt), at: e.at}
	b = b[e.typLen:]
	r.head = append([]byte(nil), b[:e.headLen]...)
	if e.bodyLen > 0 {
		r.body = append([]byte(nil), b[e.headLen:e.headLen+e.bodyLen]...)
	}
	return r
}

// drain hands fn the replies sent within linger before now, oldest first, and empties
// the ring, giving its memory back.
func (s *sentRing) drain(now time.Duration, fn func(heldReply)) {
	s.expire(now)
	for s.n > 0 {
		r := s.oldest()
		s.pop()
		fn(r)
	}
	s.ents, s.head = nil, 0
	s.chunks, s.spare, s.big, s.bigHead = nil, nil, nil, 0
}
