package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/banfleet/banfleet/store"
)

// The durable master's part of the dispatch path. A job is accepted only once the
// store has committed its Submitted record: until then it holds its id (a second
// submission attaches to it) in stateCommitting, and the commit's callback admits it
// (committed). Each later change is appended to the journal where it happens, under
// m.mu: AttemptStarted in startLocked (the envelope leaves once that record is
// durable, so that a restarted master never numbers a new attempt like one a worker
// still runs), AttemptEnded in retryOrFail, Resolved in resolveLocked, Collected when
// the retained outcome is forgotten (retain.go). Outcomes reach callers without
// waiting for their Resolved record: a master that dies in between finds the job
// running, and the worker that ran it claims it with its reply (orphan.go).

// submitDurable is submit for a master with a store. m.mu is held on entry and
// released. A remote submission (on its connection's read loop) returns at once and
// goes on from the commit's callback; an in-process Submit waits for the commit, so that
// the Ticket it returns stands for a job the store holds.
func (m *Master) submitDurable(ctx context.Context, j *job, timeout time.Duration) (*Ticket, error) {
	if err := m.reserveLocked(j); err != nil {
		m.mu.Unlock()
		endSpan(j.span, err)
		return nil, err
	}
	recs := make([]store.Record, 1, 2)
	recs[0] = store.Submitted(m.specOf(j, timeout))
	if w := j.slot; w != nil {
		recs = append(recs, store.AttemptStarted(j.id, j.attempt, w.info.ID))
	}
	m.mu.Unlock()
	m.metrics.jobSubmitted(j.tm)
	if j.remote() != nil {
		m.jn.recordThen(func(err error) { _ = m.committed(ctx, j, timeout, err) }, recs...)
		return nil, nil
	}
	done := make(chan error, 1)
	m.jn.recordThen(func(err error) { done <- err }, recs...)
	if err := m.committed(ctx, j, timeout, <-done); err != nil {
		return nil, err
	}
	return j.ticket(), nil
}

// reserveLocked checks that j may be accepted and makes it hold its id while its
// Submitted record commits. With a capable worker free, j takes one of its slots now,
// and its first attempt is recorded in the same commit (one wait for the store, not
// two, on the path of every job that does not queue). A job that would have to wait is
// checked against the queue bounds now, since once the store holds it the master must
// run it; it counts against the total byte budget while it commits.
func (m *Master) reserveLocked(j *job) error {
	if r := j.remote(); m.closed || (r != nil && r.gone) {
		return ErrClosed
	}
	if err := m.jn.err(); err != nil {
		return err
	}
	jt := m.typeLocked(j.typ)
	j.action, j.tm = jt.action, jt.tm
	if w := m.pickLocked(jt); w != nil {
		m.takeSlotLocked(j, w, j.readyAt)
	} else if err := m.roomLocked(jt, j); err != nil {
		m.dropIfIdleLocked(jt)
		return err
	}
	m.dropIfIdleLocked(jt) // admission makes it again if it went meanwhile
	m.jobs[j.id] = j
	j.state = stateCommitting
	m.queuedBytes += j.queuedSize()
	return nil
}

// specOf is the Submitted record's description of j.
func (m *Master) specOf(j *job, timeout time.Duration) store.Spec {
	spec := store.Spec{
		ID: j.id, Type: j.typ, Payload: j.payload, Deadline: j.deadline.time(), Timeout: timeout,
		MaxAttempts: j.maxAttempts, Trace: j.trace, SubmittedAt: j.submittedAt.time(),
	}
	if r := j.remote(); r != nil {
		spec.Caller = r.name()
	}
	return spec
}

// committed admits j once the store has its Submitted record (err nil), or fails it:
// a job the store does not hold is not accepted. It returns the error Submit returns.
func (m *Master) committed(ctx context.Context, j *job, timeout time.Duration, err error) error {
	m.mu.Lock()
	m.queuedBytes -= j.queuedSize()
	if j.state != stateCommitting {
		m.mu.Unlock() // Close resolved it meanwhile
		return nil
	}
	if err != nil {
		err = fmt.Errorf("dispatch: job %s not accepted: the master could not record it in its store: %w", j.id, err)
		if j.slot != nil {
			m.releaseLocked(j, j.slot, instantNow())
		}
		if m.opts.afterCommit {
			m.unheardLocked(j) // replicated.go
		}
		st, _ := m.resolveLocked(j, nil, err, instantNow())
		m.mu.Unlock()
		m.settle(j, st, nil, err, nil)
		return err
	}
	j.stored = true
	if reason := j.endErr(); reason != nil {
		// Stopped while committing (its caller cancelled it): the store holds it, so
		// it is resolved like any job that leaves its queue or never got its envelope.
		if j.slot != nil {
			m.releaseLocked(j, j.slot, instantNow())
		}
		j.state = stateLeaving
		m.mu.Unlock()
		m.resolve(j, nil, reason)
		return nil
	}
	if w := j.slot; w != nil {
		j.state = stateRunning // its attempt is recorded: the envelope may leave
		m.mu.sendLocked(j, w, j.attempt)
	} else {
		m.runOrQueueLocked(j, false)
	}
	m.watchLocked(ctx, j, timeout)
	m.mu.Unlock()
	return nil
}

// runOrQueueLocked dispatches j to a free capable worker, or queues it: behind the
// others, or at the front for a job that has waited already.
func (m *Master) runOrQueueLocked(j *job, front bool) {
	jt := m.typeLocked(j.typ)
	j.action = jt.action
	if w := m.pickLocked(jt); w != nil {
		m.startLocked(j, w, instantNow())
		return
	}
	j.state = stateQueued
	m.enqueueLocked(jt, j, front)
}

// recordResolvedLocked appends j's Resolved record, and its Collected one when its
// outcome is not retained. m.mu must be held. With WithOutcomesAfterCommit it returns
// the gate the outcome's delivery waits on (nil when nothing was recorded).
func (m *Master) recordResolvedLocked(j *job, result []byte, err error, retained bool) *commitGate {
	if m.jn == nil || !j.stored || m.closed {
		return nil
	}
	worker := j.orphanOf
	if j.worker != nil {
		worker = j.worker.info.ID
	}
	recs := []store.Record{store.Resolved(j.id, storedOutcome(result, err, worker, j.attempt), time.Now())}
	if !retained {
		recs = append(recs, store.Collected(j.id))
	}
	if !m.opts.afterCommit {
		// The outcome goes to its callers now: nobody waits for the record, which
		// rides with the next commit somebody does wait for (store.Bolt.ApplyLater).
		m.jn.recordLater(recs...)
		return nil
	}
	gate := &commitGate{}
	m.jn.recordThen(gate.committed, recs...)
	return gate
}

// recordLocked appends rec for a job the store holds. m.mu must be held.
func (m *Master) recordLocked(j *job, rec store.Record) {
	if m.jn != nil && j.stored && !m.closed {
		m.jn.record(rec)
	}
}
