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
