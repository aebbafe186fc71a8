package worker

import (
	"errors"
	"fmt"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
)

// The way a reply goes to the master. While the connection is up it is sent at once,
// and remembered for a while (sentRing) in case the connection drops
// before the master had it. While it is down (w.link), or when the send fails, the
// reply is held (heldSet) and register sends it behind the next registration, which
// lists it. banio itself would queue a frame written while it reconnects, but it sends
// that frame ahead of the registration, when a restarted master does not wait for it
// yet: hence the worker's own holding.

// reply answers the master's wait for this attempt, now or after the next
// registration, and ends the attempt's record in w.running in the same step as it
// records where the reply went, so that register lists the attempt exactly once.
func (w *Worker) reply(conn *banio.ClientIO, t *task, rep *protocol.Reply) {
	rep.Attempt, rep.WorkerID = t.job.Attempt, w.id
	r := heldReply{key: t.key(), typ: t.job.Type, wait: t.wait, head: w.replyHead(rep), body: rep.Payload}
	for {
		losses, down := w.link.load()
		if down {
			w.mu.Lock()
			if _, down = w.link.load(); down {
				w.holdLocked(r)
				w.mu.Unlock()
				return
			}
			w.mu.Unlock() // registered again meanwhile
			continue
		}

		err := w.send(conn, &r)
		r.at = w.now()

		w.mu.Lock()
		after, down := w.link.load()
		switch {
		case err == nil && after == losses:
			delete(w.running, r.key)
			w.recent.push(r)
		case conn.IsClosed():
			// Run is ending: nobody will send it.
			delete(w.running, r.key)
			w.mu.Unlock()
			w.log.Warn("worker: reply not sent", "job", t.job.ID, "err", err)
			return
		case down || after == losses:
			// Lost with the connection (a write that failed tells before OnConnLost
			// does), or it may have gone out ahead of the next registration.
			w.holdLocked(r)
		default:
			// The connection was lost and registered again while the reply was being
			// sent, so it may have gone out ahead of that registration, which listed
			// the attempt as running: send it again, behind it.
			w.mu.Unlock()
			continue
		}
		w.mu.Unlock()
		return
	}
}

// replyHead is the encoded header of rep, the worker's own. That of an OK reply to
// one of the first attempts is the same for every job: it is built once (New) and
// shared, read-only, by the replies that carry it, rather than made for each. Each is
// exactly its length, so that an append to one cannot write into another's.
func (w *Worker) replyHead(rep *protocol.Reply) []byte {
	if rep.Kind == protocol.KindOK && !rep.Retryable && rep.Code == "" && rep.Message == "" &&
		rep.WorkerID == w.id && rep.Attempt >= 1 && rep.Attempt <= len(w.okHeads) {
		return w.okHeads[rep.Attempt-1]
	}
	return protocol.ReplyHeader(rep)
}

// holdLocked keeps r for the next registration, or drops it past the bounds (the
// master runs the job again once its grace for the lost attempt is over). w.mu must
// be held.
func (w *Worker) holdLocked(r heldReply) {
	delete(w.running, r.key)
	if ok, warn := w.held.add(r); !ok && warn {
		// Under w.mu: once per outage, and a logger must not call back into the worker.
		w.log.Warn("worker: too many replies held while the master is away; dropping the rest, which the master runs again",
			"job", r.key.id, "attempt", r.key.attempt, "held", w.held.len(), "held_bytes", w.held.bytes,
			"max", protocol.MaxHeldAttempts, "max_bytes", w.held.maxBytes)
	}
}

// send writes r to the master's wait. A reply too large for a frame is replaced (in
// r) by a protocol.CodeResultTooLarge failure: without an answer the master would
// hold the job, and its caller wait, until the job's deadline, or forever.
func (w *Worker) send(conn *banio.ClientIO, r *heldReply) error {
	err := conn.SendWaitResParts(r.wait, r.head, r.body)
	if !errors.Is(err, banio.ErrFrameTooLarge) {
		return err
	}
	rep, derr := protocol.DecodeReply(r.head)
	if derr != nil {
		return err // not a header this worker made: cannot happen
	}
	w.tooLargeLog.Do(func() {
		w.log.Warn("worker: a reply does not fit a frame; the job fails with "+protocol.CodeResultTooLarge+" (further ones are not logged)",
			"type", r.typ, "job", r.key.id, "err", err)
	})
	big := replyTooLarge(len(r.body), len(rep.Message), err)
	big.Attempt, big.WorkerID = r.key.attempt, w.id
	r.head, r.body = protocol.ReplyHeader(&big), nil
	return conn.SendWaitRes(r.wait, r.head)
}

// replyTooLarge is the protocol.CodeResultTooLarge error that replaces a reply that
// failed to send with sendErr. It is not retryable: the job would make as large a
// result again.
func replyTooLarge(payload, message int, sendErr error) protocol.Reply {
	return failed(protocol.CodeResultTooLarge, fmt.Sprintf(
		"the job's reply (%d-byte result, %d-byte message) cannot be sent to the master: %v; return large results by other means (store them, return a reference) or raise banio.WithMaxFrameSize on master, workers and clients",
		payload, message, sendErr))
}
