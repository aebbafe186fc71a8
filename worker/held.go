package worker

import (
	"time"

	"github.com/banfleet/banfleet/protocol"
)

// heldReply is one job's reply kept for the master: its encoded header and payload,
// and the attempt it answers. The payload is the handler's result, referenced, not
// copied.
type heldReply struct {
	key  jobKey
	typ  string // the job's type, for logs
	wait string // the envelope's Key: the master's wait for this attempt
	head []byte // protocol.ReplyHeader of the reply
	body []byte // the reply's payload
	at   time.Duration
	// at: when it was sent, on the worker's clock (Worker.now); for sentRing only.
}

func (r *heldReply) size() int { return len(r.head) + len(r.body) }

// heldSet is the replies the worker could not deliver, or may not have delivered,
// since the connection to the master was lost: register offers them to the master and
// sends them. It is bounded by count (protocol.MaxHeldAttempts) and bytes; what does
// not fit is dropped, and the master runs that job again after its grace for the lost
// attempt. The Worker's mu protects it.
type heldSet struct {
	replies  []heldReply
	bytes    int
	maxBytes int
	warned   bool // a drop was logged during this outage (reset by register)
}

// add holds r, or reports false when r does not fit the bounds. warn is true for the
// first drop of an outage, which the caller logs.
func (h *heldSet) add(r heldReply) (ok, warn bool) {
	if len(h.replies) >= protocol.MaxHeldAttempts || h.bytes+r.size() > h.maxBytes {
		warn = !h.warned
		h.warned = true
		return false, warn
	}
	r.at = 0
	h.replies = append(h.replies, r)
	h.bytes += r.size()
	return true, false
}

// take empties the set and returns what it held.
func (h *heldSet) take() []heldReply {
	rs := h.replies
	h.replies, h.bytes = nil, 0
	return rs
}

func (h *heldSet) len() int { return len(h.replies) }

// sentRing is the replies sent within the linger window, oldest first, kept by
// reference: when the connection is lost they are held (see WithReplyLinger), since
// any of them may not have reached the master. Bounded like heldSet, whose bounds they
// must fit on a loss anyway; the oldest give way first. The Worker's mu protects it.
type sentRing struct {
	buf      []heldReply // circular; grows up to maxN
	head, n  int
	bytes    int
	maxN     int
	maxBytes int
	linger   time.Duration // 0: keep nothing
}

// push records r, sent at r.at, dropping what expired or no longer fits.
func (s *sentRing) push(r heldReply) {
	if s.linger <= 0 || r.size() > s.maxBytes || s.maxN <= 0 {
		return
	}
	s.expire(r.at)
	for s.n > 0 && (s.n >= s.maxN || s.bytes+r.size() > s.maxBytes) {
		s.pop()
	}
	if s.n == len(s.buf) {
		s.grow()
	}
	s.buf[(s.head+s.n)%len(s.buf)] = r
	s.n++
	s.bytes += r.size()
}

// expire drops the replies sent more than linger before now.
func (s *sentRing) expire(now time.Duration) {
	for s.n > 0 && now-s.buf[s.head].at > s.linger {
		s.pop()
	}
}

// pop drops the oldest reply, releasing what it referenced.
func (s *sentRing) pop() {
	s.bytes -= s.buf[s.head].size()
	s.buf[s.head] = heldReply{}
	s.head = (s.head + 1) % len(s.buf)
	s.n--
}

func (s *sentRing) grow() {
	size := min(max(2*len(s.buf), 64), s.maxN)
	buf := make([]heldReply, size)
	for i := range s.n {
		buf[i] = s.buf[(s.head+i)%len(s.buf)]
	}
	s.buf, s.head = buf, 0
}

// drain hands fn the replies sent within linger before now, oldest first, and empties
// the ring.
func (s *sentRing) drain(now time.Duration, fn func(heldReply)) {
	s.expire(now)
	for s.n > 0 {
		r := s.buf[s.head]
		s.pop()
		fn(r)
	}
	s.buf, s.head = nil, 0
}
