package dispatch

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// attempt is one dispatch of a job to a worker, from the job's envelope going out to
// the worker's reply (or the loss of its connection) coming back.
type attempt struct {
	m       *Master
	j       *job
	w       *workerState
	n       int          // the job's dispatch sequence number
	sendErr atomic.Value // error: why the envelope could not be written
}

// attemptKey is the wait key of attempt n of job id (protocol.AttemptKey).
func attemptKey(id string, n int) string { return protocol.AttemptKey(id, n) }

// sendAttempt sends the job's envelope to the worker and leaves the reply to a wait
// callback: SetWaitFunc → WriteMsgNoBlock, then done runs on the worker connection's
// read loop. No goroutine waits for the reply, and none is started for the send: the
// envelope is appended to the worker's queue and leaves with the others of the current
// read batch (banio's deferred flush), so sendAttempt never blocks and may run on a
// read loop or the store's committer. What a worker can be sent is bounded by its
// capacity; only an envelope too large for that bound to mean little (a payload above
// blockingEnvelope) is sent by a goroutine of its own that may wait for room.
func (m *Master) sendAttempt(j *job, w *workerState, n int) {
	if len(j.payload) > blockingEnvelope {
		go m.writeAttempt(j, w, n, true)
		return
	}
	m.writeAttempt(j, w, n, false)
}

// blockingEnvelope: payloads above this are sent by a goroutine that may wait for room
// in the worker's queue rather than risk cutting it as a slow consumer.
const blockingEnvelope = 1 << 20

// writeAttempt is sendAttempt's work; block says whether the write may wait for room.
func (m *Master) writeAttempt(j *job, w *workerState, n int, block bool) {
	if j.span.IsRecording() {
		j.span.AddEvent("dispatched", trace.WithAttributes(
			protocol.AttrAttempt.Int(n), protocol.AttrWorkerID.String(w.info.ID)))
	}
	a := &attempt{m: m, j: j, w: w, n: n}
	key, err := w.conn.SetWaiterView(attemptKey(j.id, n), a) // a.WaitDone: no method value to allocate
	if errors.Is(err, banio.ErrConnClosed) {
		m.notSent(j, w, n, err)
		return
	}
	if err != nil {
		a.WaitDone(nil, err)
		return
	}
	if j.endErr() != nil {
		// Stopped before the wait existed, so jobStopped could not end it.
		w.conn.CloseWaitChan(key)
		return
	}
	hb := getHead()
	head := protocol.AppendJobHeader(*hb, &protocol.Job{
		ID: j.id, Type: j.typ, Key: key, Attempt: n, Deadline: j.deadline.time(), Trace: j.trace,
	})
	// The payload follows the header on the wire without being copied behind it here,
	// nor boxed in an interface with it (WriteParts).
	if block {
		err = w.conn.WriteParts(j.action, head, j.payload)
	} else {
		err = w.conn.WritePartsNoBlock(j.action, head, j.payload)
	}
	putHead(hb, head)
	if err != nil {
		a.sendErr.Store(err)
		w.conn.CloseWaitChan(key)
	}
}

// WaitDone receives the attempt's outcome (banio.Waiter): the worker's reply, or why
// none will come. data is lent for the call only (SetWaiterView): the result in it is
// copied where the job's outcome keeps it (finishRaw), and the reply as it came is
// forwarded to a remote caller within the call (see deliver).
func (a *attempt) WaitDone(data []byte, err error) {
	m, j, w := a.m, a.j, a.w
	if err != nil {
		if sendErr, ok := a.sendErr.Load().(error); ok {
			err = sendErr
		}
		m.attemptFailed(j, w, a.n, err)
		return
	}
	rep := protocol.Reply{WorkerID: w.info.ID} // kept, not decoded again, when it is this worker
	derr := protocol.DecodeReplyInto(&rep, data)
	if derr == nil && rep.Attempt != a.n {
		derr = fmt.Errorf("reply for attempt %d, want %d", rep.Attempt, a.n)
	}
	if derr != nil {
		m.opts.logger.Warn("dispatch: bad reply from worker", "worker", w.info.ID, "job", j.id, "err", derr)
		m.attemptFailed(j, w, a.n, fmt.Errorf("%w: bad reply: %v", ErrWorkerLost, derr))
		return
	}
	m.attemptReplied(j, w, &rep, data)
}

// keepsResultLocked reports whether resolving j keeps its result past the call that
// lends it (attempt.done): an in-process Ticket does (its submitter's or a follower's),
// and so do a durable master's record and a delivery after the commit. Nothing else
// does: a remote caller is sent the reply before the call returns, and the retained
// outcome is a copy in the retention ring (retainStore). m.mu must be held.
func (m *Master) keepsResultLocked(j *job) bool {
	if m.jn != nil || m.opts.afterCommit {
		return true
	}
	if _, remote := j.caller.(*remoteReply); !remote {
		return true
	}
	for _, f := range j.followers {
		if _, remote := f.(*remoteReply); !remote {
			return true
		}
	}
	return false
}

// finish frees w's slot for j and resolves j: the end of an attempt that ends the job.
func (m *Master) finish(j *job, w *workerState, result []byte, err error) {
	m.finishRaw(j, w, result, err, nil)
}

// finishRaw is finish with the worker's encoded reply that carries the outcome, for
// remote callers to be forwarded as it is (observer.resolveRaw). raw, when given, is
// lent for the call only (attempt.done), and result lies in it: result is copied if
// resolving j keeps it (keepsResultLocked).
func (m *Master) finishRaw(j *job, w *workerState, result []byte, err error, raw []byte) {
	m.mu.Lock()
	now := instantNow() // one reading for the attempt's end and the job's resolution
	ran := m.releaseLocked(j, w, now)
	if raw != nil && m.keepsResultLocked(j) {
		result = bytes.Clone(result)
	}
	st, ok := m.resolveLocked(j, result, err, now)
	m.mu.Unlock()
	m.metrics.attemptEnded(j.tm, classify(err), ran)
	m.noteAttempt(w, err)
	if ok {
		m.settle(j, st, result, err, raw)
	}
}

// releaseLocked frees w's slot for j, now, and dispatches what waits for it. It returns
// how long the attempt that held the slot ran, or -1 if this call did not end one (the
// slot was freed before) or its start is unknown (adopted after a restart). m.mu must
// be held.
func (m *Master) releaseLocked(j *job, w *workerState, now instant) time.Duration {
	if j.slot != w {
		return -1
	}
	j.slot = nil
	m.slotFreedLocked(w, now)
	if j.startedAt.isZero() {
		return -1
	}
	return now.sub(j.startedAt)
}

// attemptFailed handles an attempt that got no reply: the job was stopped (cancel it
// on the worker, resolve with the stop's reason), its envelope cannot be sent (resolve
// with ErrJobTooLarge) or the worker was lost (retry). It may run on a read loop (an
// envelope that could not be sent fails where it was sent), so it never blocks.
func (m *Master) attemptFailed(j *job, w *workerState, attempt int, err error) {
	if err := j.endErr(); err != nil {
		m.sendCancel(w, j.id, attempt)
		m.finish(j, w, nil, err)
		return
	}
	if errors.Is(err, banio.ErrFrameTooLarge) {
		// Deterministic: the same envelope fits no other worker's frame either, and
		// this worker is not lost.
		m.finish(j, w, nil, fmt.Errorf("%w: job %s of type %q: its %d-byte payload and envelope header do not fit a frame (%v); ship large inputs as a blob (PutBlob, pass its hash) or raise banio.WithMaxFrameSize on master, workers and clients",
			ErrJobTooLarge, j.id, j.typ, len(j.payload), err))
		return
	}
	if errors.Is(err, banio.ErrConnClosed) {
		m.mu.Lock()
		m.goneLocked(w)
		w.lost++
		m.mu.Unlock()
	}
	if errors.Is(err, banio.ErrConnClosed) || errors.Is(err, ErrWorkerLost) {
		err = fmt.Errorf("%w: %s (%s) during attempt %d: %v", ErrWorkerLost, w.info.ID, w.conn.GetRemote(), attempt, err)
	}
	m.retryOrFail(j, w, err, true, retryWorkerLost)
}

// notSent handles an attempt whose envelope never left: the worker's connection was
// closed before its wait could be set up (a job picked for the worker in the moment
// between its connection closing and the master forgetting it). The worker never saw
// the job, so it costs no attempt: it goes back to its queue at once, for another
// worker.
func (m *Master) notSent(j *job, w *workerState, attempt int, err error) {
	m.mu.Lock()
	m.goneLocked(w)
	m.mu.Unlock()
	if reason := j.endErr(); reason != nil {
		m.finish(j, w, nil, reason)
		return
	}
	m.retryOrFail(j, w, fmt.Errorf("%w: %s (%s): attempt %d not sent: %v", ErrWorkerLost, w.info.ID, w.conn.GetRemote(), attempt, err), false, retryNotSent)
}

// attemptReplied handles a worker's reply, rep decoded from raw. An OK reply goes to a
// remote caller as raw, without being encoded again (its attempt and worker id are the
// worker's; a Client reads only the kind and payload of an OK reply).
func (m *Master) attemptReplied(j *job, w *workerState, rep *protocol.Reply, raw []byte) {
	if err := j.endErr(); rep.Kind != protocol.KindOK && err != nil {
		// The job was stopped (timeout, cancellation) and the worker noticed first:
		// the caller gets the stop's reason, as if the master had.
		m.finish(j, w, nil, err)
		return
	}
	switch rep.Kind {
	case protocol.KindOK:
		m.finishRaw(j, w, rep.Payload, nil, raw)
	case protocol.KindHandedBack:
		m.retryOrFail(j, w, nil, false, retryHandedBack) // costs no attempt
	case protocol.KindDeadline, protocol.KindCanceled:
		// The worker's context for the job ended on its own (its copy of the deadline
		// fired first): the job is over, not retried.
		m.finish(j, w, nil, fmt.Errorf("dispatch: job %s on worker %s: %w", j.id, w.info.ID, protocol.KindError(rep.Kind, rep.Code)))
	default:
		// The worker is the one that ran the attempt, whatever id its reply gives.
		rerr := rep.RemoteError()
		rerr.WorkerID = w.info.ID
		if rep.Kind != protocol.KindRemote {
			rerr.Message = fmt.Sprintf("unexpected reply kind %d: %s", rep.Kind, rep.Message)
			rerr.Retryable = false
		}
		if !rerr.Retryable {
			m.finish(j, w, nil, rerr)
			return
		}
		m.retryOrFail(j, w, rerr, true, retryError)
	}
}

// retryEvents name the span event of each retry reason.
var retryEvents = [numRetryReasons]string{"worker_lost", "retry", "handed_back", "not_sent"}

// retryStatus is the run-duration status of an attempt that ended for each retry
// reason; not_sent has none, since the attempt never ran.
var retryStatus = [numRetryReasons]outcomeClass{outcomeLost, outcomeError, attemptHandedBack, 0}

// retryOrFail frees w's slot and queues j again, or resolves it with err when its
// attempts are spent. A spent attempt (lost worker, retryable error) waits a backoff
// pause first; a hand-back is re-dispatched at once and costs nothing.
func (m *Master) retryOrFail(j *job, w *workerState, err error, spend bool, why retryReason) {
	m.mu.Lock()
	ran := m.releaseLocked(j, w, instantNow())
	if why == retryNotSent {
		ran = -1
	}
	m.noteRetried(w, why)
	if j.state == stateResolved {
		m.mu.Unlock()
		m.metrics.attemptEnded(j.tm, retryStatus[why], ran)
		return
	}
	if spend {
		j.spent++
	}
	if spend && j.spent >= j.maxAttempts {
		m.mu.Unlock()
		m.metrics.attemptEnded(j.tm, retryStatus[why], ran)
		m.resolve(j, nil, fmt.Errorf("after %d attempts: %w", j.spent, err))
		return
	}
	event := retryEvents[why]
	reason := event
	if err != nil {
		reason = err.Error()
	}
	m.recordLocked(j, store.AttemptEnded(j.id, j.attempt, spend, reason))
	j.lastErr = err
	j.state = stateBackoff
	delay := time.Duration(0)
	if spend {
		delay = m.backoff(j.spent)
	}
	m.mu.Unlock()
	m.retried.Add(1)
	m.metrics.attemptEnded(j.tm, retryStatus[why], ran)
	m.metrics.jobRetried(j.tm, why)
	attrs := []attribute.KeyValue{protocol.AttrAttempt.Int(j.attempt), protocol.AttrWorkerID.String(w.info.ID)}
	if err != nil {
		attrs = append(attrs, attribute.String("error", err.Error()))
	}
	j.span.AddEvent(event, trace.WithAttributes(attrs...))
	if delay == 0 {
		m.requeue(j)
		return
	}
	time.AfterFunc(delay, func() { m.requeue(j) })
}

// requeue puts a job that was backing off at the front of its queue.
func (m *Master) requeue(j *job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if j.state != stateBackoff {
		return // resolved meanwhile (cancelled, master closed)
	}
	j.readyAt = instantNow()
	jt := m.typeLocked(j.typ)
	if w := m.pickLocked(jt); w != nil {
		m.startLocked(j, w, j.readyAt)
		return
	}
	j.state = stateQueued
	m.enqueueLocked(jt, j, true)
}

// backoff is the pause before the next attempt: base·2^(spent−1), capped, ±25 % jitter.
func (m *Master) backoff(spent int) time.Duration {
	d := m.opts.retryBackoff
	for i := 1; i < spent && d < m.opts.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, m.opts.maxBackoff)
	if d <= 0 {
		return 0
	}
	return d*3/4 + rand.N(d/2+1)
}

// sendCancel tells the worker to cancel an attempt it is running.
func (m *Master) sendCancel(w *workerState, id string, attempt int) {
	_ = w.conn.WriteMsgNoBlock(&banio.IOMsg{Action: protocol.ActionCancel, Data: protocol.CancelMsg{ID: id, Attempt: attempt}})
}
