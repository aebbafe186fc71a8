package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/store"
)

// OpenMaster makes a Master whose job state lives in st (store.OpenBolt for a master
// that survives its process, store.NewMem to run the same code in memory), like
// NewMaster otherwise: call it before srv.Serve. It rebuilds what st holds:
//
//   - queued jobs go back to their queues, in submission order;
//   - jobs that were running are orphaned attempts, which the workers running them
//     claim when they re-register (those no worker claims within WithOrphanGrace run
//     again, at no cost in attempts);
//   - resolved outcomes are retained for what is left of their retention;
//   - blobs put with PutBlob are held again.
//
// Deadlines are absolute and hold across the restart. The jobs of remote callers
// wait for their Clients to re-attach (fleet.attach) within WithCallerGrace, and are
// cancelled after it, as when a caller's connection closes. A job submitted in
// process has no caller any more after a restart: it runs, and its outcome is
// retained for a submission of its id to collect.
//
// From then on every change of a job's state is applied to st before it takes effect
// where it must (a job is accepted once its Submitted record is durable; an attempt is
// sent once its AttemptStarted record is), and st must not be written by anyone else.
// The Master does not close st: close it after Master.Close.
func OpenMaster(srv *banio.ServerIO, st store.Store, opts ...Option) (*Master, error) {
	if st == nil {
		return nil, errors.New("dispatch: OpenMaster needs a store (store.OpenBolt or store.NewMem)")
	}
	state, err := st.Load()
	if err != nil {
		return nil, fmt.Errorf("dispatch: load the master's state from its store: %w", err)
	}
	m := newMaster(srv, opts)
	m.jn = newJournal(st, m.opts.logger)
	m.orphans = make(map[string]map[*job]struct{})
	m.retained.forget = func(id string) { m.jn.record(store.Collected(id)) }
	expired := m.restore(state, time.Now())
	m.serve()
	for _, j := range expired {
		m.stop(j, errJobTimedOut)
	}
	return m, nil
}

// restore rebuilds the master's state from what its store holds, and returns the
// jobs whose deadline passed while the master was away, for the caller to stop.
func (m *Master) restore(state *store.State, now time.Time) (expired []*job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range state.Blobs() {
		if data, ok := state.Blob(b.Hash); ok && b.Pinned {
			m.blobs.restore(b.Hash, data)
		}
	}
	for _, js := range outcomesByResolution(state.Outcomes()) {
		m.restoreOutcomeLocked(state, js, now)
	}
	m.armRetainLocked()

	var restoredCaller *remoteCaller // the callers of restored remote jobs, until they re-attach
	queued, orphaned := 0, 0
	at := instantOf(now) // deadlines are measured from the restore's one reading
	for _, js := range state.Unresolved() {
		payload, _ := state.Payload(js.Spec.ID)
		j := m.restoredJob(js, payload)
		if js.Spec.Caller != "" {
			if restoredCaller == nil {
				restoredCaller = &remoteCaller{m: m, gone: true}
			}
			j.callRemote(restoredCaller, "")
		}
		m.jobs[j.id] = j
		if js.Phase == store.PhaseRunning {
			m.orphanLocked(j, js.Worker)
			orphaned++
		} else {
			m.runOrQueueLocked(j, false)
			queued++
		}
		if !j.deadline.isZero() {
			if d := j.deadline.sub(at); d > 0 {
				j.timer = time.AfterFunc(d, func() { m.stop(j, errJobTimedOut) })
			} else {
				expired = append(expired, j)
			}
		}
	}
	if orphaned > 0 {
		m.orphanTimer = time.AfterFunc(max(m.opts.orphanGrace, 0), m.orphanGraceOver)
	}
	if restoredCaller != nil {
		grace := m.opts.callerGrace
		m.afterGraceLocked(max(grace, 0), func() {
			restoredCaller.stopJobs(fmt.Errorf("%w: its caller did not re-attach within %v of the master's restart", errJobCanceled, grace))
		})
	}
	if queued+orphaned > 0 || m.retained.n > 0 {
		m.opts.logger.Info("dispatch: master restored from its store", "queued", queued, "orphaned", orphaned,
			"retained", m.retained.n, "blobs", len(m.blobs.blobs))
	}
	return expired
}

// restoredJob is the master's job for an unresolved job its store holds.
func (m *Master) restoredJob(js store.JobState, payload []byte) *job {
	spec := &js.Spec
	ctx := m.opts.tracing.extract(context.Background(), spec.Trace)
	ctx, span := m.opts.tracing.dispatch.Start(ctx, "dispatch", spec.ID, spec.Type)
	span.AddEvent("restored from the store")
	j := &job{
		id:          spec.ID,
		typ:         spec.Type,
		payload:     payload,
		hash:        payloadHash(payload),
		deadline:    instantOf(spec.Deadline),
		maxAttempts: max(spec.MaxAttempts, 1),
		caller:      newTicket(spec.ID), // or a remote caller's, set by the caller
		span:        span,
		trace:       m.opts.tracing.inject(ctx),
		attempt:     js.Attempt,
		spent:       js.Spent,
		stored:      true,
		submittedAt: instantOf(spec.SubmittedAt),
		readyAt:     instantNow(),
		tm:          m.metrics.typeMetricsLocked(spec.Type),
	}
	if j.submittedAt.isZero() {
		j.submittedAt = j.readyAt
	}
	// Counted as submitted to this master, so that every job it resolves was.
	m.metrics.jobSubmitted(j.tm)
	if js.LastError != "" {
		j.lastErr = errors.New(js.LastError)
	}
	return j
}

// restoreOutcomeLocked retains a resolved job's outcome for the rest of its retention,
// or forgets it (a Collected record) if that has passed.
func (m *Master) restoreOutcomeLocked(state *store.State, js store.JobState, now time.Time) {
	o := js.Outcome
	result := o.Result
	if o.ResultRef != "" {
		result, _ = state.Blob(o.ResultRef)
	}
	res, err := loadedOutcome(o, result)
	out := outcome{id: js.Spec.ID, typ: js.Spec.Type, result: res, err: err, unhashed: true}
	if !m.retained.addUntil(out, instantOf(now), instantOf(js.ResolvedAt.Add(m.opts.retention))) {
		m.jn.record(store.Collected(js.Spec.ID))
	}
}

// outcomesByResolution sorts outcomes by resolution time, the order the retained
// ring keeps (submission order is not: a later job may end first).
func outcomesByResolution(out []store.JobState) []store.JobState {
	slices.SortStableFunc(out, func(a, b store.JobState) int { return a.ResolvedAt.Compare(b.ResolvedAt) })
	return out
}

// restore puts a blob back without counting against the budget: a master restarted
// with a smaller one keeps what it held.
func (s *blobStore) restore(hash string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blobs == nil {
		s.blobs = make(map[string][]byte)
	}
	if _, ok := s.blobs[hash]; !ok {
		s.blobs[hash] = data
		s.bytes += int64(len(data))
	}
}
