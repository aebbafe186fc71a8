package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/banfleet/banfleet/banio"
)

// Master routes jobs to the workers connected to a banio ServerIO. Create it with
// NewMaster before the server starts serving. It is safe for concurrent use.
//
// The dispatch path: Submit → a free capable worker is chosen (route.go), or the job
// waits in its type's FIFO (queue.go) → sendAttempt (attempt.go) sends the envelope with
// SetWaitFunc → WriteMsg on the worker's connection → the reply, handed to the wait's
// callback on that connection's read loop, resolves the Ticket, or the job is queued
// again (worker lost, retryable error, handed back).
type Master struct {
	srv  *banio.ServerIO
	opts options

	// mu protects the following fields and the mu-guarded fields of every job,
	// workerState, jobType and workerClass.
	mu          masterMu
	workers     []*workerState // in registration order
	byConn      map[*banio.BanConn]*workerState
	types       map[string]*jobType     // the types served or queued (jobtype.go)
	classes     map[string]*workerClass // by classKey of their type sets (class.go)
	jobs        map[string]*job         // unresolved jobs by ID
	queuedBytes int64                   // queuedSize of all queued jobs, for WithQueueBytesTotal
	picks       uint64                  // jobs given to workers, the clock of workerState.lastPick
	routeSteps  int                     // classes and waiting types routing looked at; tests bound it
	closed      bool
	// workersChanged is closed and cleared at every change of workers (waitworkers.go).
	workersChanged chan struct{}
	retained       retainStore // outcomes of resolved jobs, for idempotent ids (retain.go)

	// A durable master's (OpenMaster): the journal its changes go to, and the
	// attempts it found running when it started, by the id of the worker that ran
	// them, until that worker claims them or the orphan grace ends (orphan.go).
	jn          *journal
	orphans     map[string]map[*job]struct{}
	orphanTimer *time.Timer
	// graceTimers are the pending caller grace periods (remote.go); Close stops them,
	// since each holds the Master until it fires.
	graceTimers map[*time.Timer]struct{}

	resolved [numOutcomes]atomic.Uint64 // jobs resolved, by how they count (classify)
	retried  atomic.Uint64
	metrics  *masterMetrics // its instruments (metrics.go)
	meter    rateMeter
	blobs    blobStore
	insight  insight // what the status page shows beyond the counters (insight.go)
}

// NewMaster makes a Master on srv. It adds its handlers to every connection srv
// accepts from now on (chaining any InitConn already set), so call it before
// srv.Serve.
func NewMaster(srv *banio.ServerIO, opts ...Option) *Master {
	m := newMaster(srv, opts)
	m.serve()
	return m
}

func newMaster(srv *banio.ServerIO, opts []Option) *Master {
	m := &Master{
		srv:     srv,
		opts:    buildOptions(opts),
		byConn:  make(map[*banio.BanConn]*workerState),
		types:   make(map[string]*jobType),
		classes: make(map[string]*workerClass),
		jobs:    make(map[string]*job),
	}
	m.metrics = newMasterMetrics(m.opts.meterProvider)
	m.mu.m = m
	m.retained.init(m.opts.retention, m.opts.retainJobs, m.opts.retainBytes)
	return m
}

// serve adds the master's handlers to the connections srv accepts.
func (m *Master) serve() {
	srv := m.srv
	prev := srv.InitConn
	srv.InitConn = func(c *banio.BanConn) {
		if prev != nil {
			prev(c)
		}
		m.initConn(c)
	}
	m.registerMetrics(m.opts.meterProvider)
	m.startInsight()
}

// Submit queues job and returns its Ticket at once. ctx governs the job itself:
// cancelling it cancels the job wherever it is (queued, or running on a worker). With
// no capable worker free the job waits in its type's FIFO; when that is full, in jobs
// or in bytes (WithQueueLimit, WithQueueBytesPerType, WithQueueBytesTotal), Submit fails
// with an error that wraps ErrQueueFull and says which bound it met.
//
// Job ids are idempotent: when the master holds job.ID (queued, running, or resolved
// and retained: WithResultRetention), Submit does not run it again but returns a new
// Ticket that resolves with that job's outcome (at once if it is retained). Only the
// first submission's ctx governs the job; a later one's governs nothing. If the held
// job has another Type or payload, Submit fails with an error wrapping ErrIDConflict.
// An id is a capability: whoever knows it can collect the job's outcome.
func (m *Master) Submit(ctx context.Context, job Job) (*Ticket, error) {
	payload, err := EncodePayload(job.Payload)
	if err != nil {
		return nil, err
	}
	return m.submit(ctx, job, payload, nil, "")
}

// Call submits a job and waits for its result.
func (m *Master) Call(ctx context.Context, jobType string, payload any) ([]byte, error) {
	t, err := m.Submit(ctx, Job{Type: jobType, Payload: payload})
	if err != nil {
		return nil, err
	}
	return t.Wait(ctx)
}

// submit is Submit with the payload marshalled. A remote submission names its caller
// and the wait key its outcome answers.
func (m *Master) submit(ctx context.Context, spec Job, payload []byte, remote *remoteCaller, replyKey string) (*Ticket, error) {
	if spec.Type == "" {
		return nil, fmt.Errorf("%w: empty job type", ErrBadJob)
	}
	// A resubmitted id is checked against the payload it was submitted with, to catch
	// different work given the same id. An id made up for the job (here, or by a
	// Client, which sends its reply key as the id) is submitted again only by its own
	// submitter, with the same payload: hashing that payload guards nothing, and at
	// 64 KiB it was 3.5 % of a remote call's CPU.
	madeUp := spec.ID == "" || spec.ID == replyKey
	if spec.ID == "" {
		spec.ID = banio.NewKey()
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = m.opts.defaultTimeout
	}
	attempts := spec.MaxAttempts
	if attempts <= 0 {
		attempts = m.opts.maxAttempts
	}
	ctx, span := m.opts.tracing.dispatch.Start(ctx, "dispatch", spec.ID, spec.Type)
	now := instantNow()
	j := &job{
		id:          spec.ID,
		typ:         spec.Type,
		payload:     payload,
		unhashed:    madeUp,
		maxAttempts: attempts,
		span:        span,
		trace:       m.opts.tracing.inject(ctx),
		submittedAt: now,
		readyAt:     now,
	}
	if !madeUp {
		j.hash = payloadHash(payload)
	}
	if remote != nil {
		j.callRemote(remote, replyKey)
	} else {
		j.caller = newTicket(spec.ID)
	}
	if d, ok := ctx.Deadline(); ok {
		j.deadline = instantOf(d)
	}
	if timeout > 0 {
		if d := now.add(timeout); j.deadline.isZero() || d < j.deadline {
			j.deadline = d
		}
	}
	m.mu.Lock()
	if held, out, err := m.heldLocked(j); held {
		m.mu.Unlock()
		span.AddEvent("attached to the job already held under its id")
		endSpan(span, err)
		if err != nil {
			return nil, err
		}
		if out != nil {
			j.caller.resolveRaw(out.result, out.err, nil)
		}
		return j.ticket(), nil
	}
	if m.jn != nil {
		return m.submitDurable(ctx, j, timeout)
	}
	err := m.admitLocked(j)
	if err == nil {
		m.watchLocked(ctx, j, timeout)
	}
	m.mu.Unlock()
	if err != nil {
		endSpan(span, err)
		return nil, err
	}
	m.metrics.jobSubmitted(j.tm)
	return j.ticket(), nil
}

// watchLocked arms what stops an admitted job: its caller's context and its timeout.
// Only once the job is queued or running, because jobStopped reads its state; the
// watch runs at once if the context has already ended. Set under m.mu because resolve
// reads them there.
func (m *Master) watchLocked(ctx context.Context, j *job, timeout time.Duration) {
	if ctx.Done() != nil {
		j.stopWatch = context.AfterFunc(ctx, func() { m.stop(j, contextError(ctx)) })
	}
	if timeout > 0 {
		j.timer = time.AfterFunc(timeout, func() { m.stop(j, errJobTimedOut) })
	}
}

// admitLocked registers j and dispatches or queues it.
func (m *Master) admitLocked(j *job) error {
	if r := j.remote(); m.closed || (r != nil && r.gone) {
		return ErrClosed
	}
	jt := m.typeLocked(j.typ)
	j.action, j.tm = jt.action, jt.tm
	if w := m.pickLocked(jt); w != nil {
		m.jobs[j.id] = j
		m.startLocked(j, w, j.readyAt) // it waited for nothing: the submission's own clock reading
		return nil
	}
	if err := m.roomLocked(jt, j); err != nil {
		m.dropIfIdleLocked(jt)
		return err
	}
	m.jobs[j.id] = j
	j.state = stateQueued
	m.enqueueLocked(jt, j, false)
	return nil
}

// maxFollowers bounds the later submissions (and re-attached callers) that may attach to
// one unresolved job, so that a peer repeating an id cannot make the master hold an
// unbounded list.
const maxFollowers = 1024

// heldLocked attaches the submission j to the job the master already holds under its
// id, if any. held reports whether there was one; then j is not admitted, and either err
// says why it cannot attach (ErrIDConflict, too many attached), or out is the retained
// outcome j.caller must resolve with (nil: the job is unresolved and j.caller follows
// it). m.mu must be held.
func (m *Master) heldLocked(j *job) (held bool, out *outcome, err error) {
	if m.closed {
		return false, nil, nil // admitLocked refuses
	}
	now := j.submittedAt
	// An outcome whose retention has passed is forgotten before its id is taken
	// again: a durable master records the Collected first, which the store needs
	// before a new Submitted of the id.
	m.retained.expire(now)
	if old := m.jobs[j.id]; old != nil {
		if old.typ != j.typ || !samePayload(old.hash, old.unhashed, j) {
			return true, nil, idConflict(j, old.typ)
		}
		return true, nil, m.followLocked(old, j.caller)
	}
	if o, ok := m.retained.get(j.id, now); ok {
		if o.typ != j.typ || !samePayload(o.hash, o.unhashed, j) {
			return true, nil, idConflict(j, o.typ)
		}
		held := o // to the heap only when there is one: &o would put o there for every job
		return true, &held, nil
	}
	return false, nil, nil
}

// samePayload reports whether j, submitted under an id held with a payload of the
// given hash, may carry that payload: the hashes agree, or either side has none (an id
// made up for its job, or an outcome loaded from a store, which keeps no payload).
func samePayload(hash uint64, unhashed bool, j *job) bool {
	return unhashed || j.unhashed || hash == j.hash
}

func idConflict(j *job, heldType string) error {
	return fmt.Errorf("%w: job %s is held (unresolved or retained) as a job of type %q with its own payload, not as this job of type %q with a %d-byte payload; give different work a different id",
		ErrIDConflict, j.id, heldType, j.typ, len(j.payload))
}

// followLocked makes t, a later submission of old's id or a re-attaching remote caller,
// receive old's outcome. A remote caller that takes the place of old's own caller after
// that one's connection closed (a Client that reconnected) takes the job over: its
// reply, progress and cancellation are now this caller's. m.mu must be held.
func (m *Master) followLocked(old *job, t observer) error {
	tr, tok := t.(*remoteReply)
	or, ook := old.caller.(*remoteReply)
	if tok && ook {
		r, key := tr.target()
		switch prev, prevKey := or.target(); {
		case prev == nil || r == nil:
		case prev == r && prevKey == key:
			// The same caller repeats itself (a resubmission after an attach that
			// timed out): the one reply it waits for is on its way already.
			return nil
		case prev.gone:
			or.repoint(r, key)
			return nil
		}
	}
	if len(old.followers) >= maxFollowers {
		return fmt.Errorf("%w: job %s already has %d submissions attached to it", ErrBadJob, old.id, maxFollowers)
	}
	old.followers = append(old.followers, t)
	return nil
}

// stop stops a job for reason (its caller's context ended, its timeout fired, its
// caller cancelled it or went away), unless it was stopped or resolved before.
func (m *Master) stop(j *job, reason error) {
	if j.end(reason) {
		m.jobStopped(j)
	}
}

// jobStopped acts on a job's stop. A queued or backing-off job resolves here. A running
// one is resolved by its attempt, which also tells the worker to stop, once its wait is
// closed here.
func (m *Master) jobStopped(j *job) {
	m.mu.Lock()
	switch j.state {
	case stateQueued:
		m.unqueueLocked(j)
	case stateBackoff:
	case stateOrphan:
		m.unorphanLocked(j) // its worker, if it claims it later, is told to cancel it
	case stateRunning:
		w, key := j.worker, attemptKey(j.id, j.attempt)
		m.mu.Unlock()
		w.conn.CloseWaitChan(key) // → attemptFailed
		return
	default:
		m.mu.Unlock()
		return
	}
	j.state = stateLeaving // no longer poppable nor requeued
	m.mu.Unlock()
	m.resolve(j, nil, j.endErr())
}

// cancelRemote cancels a job at the request of the remote caller that submitted it (or
// took it over after a reconnect).
func (m *Master) cancelRemote(r *remoteCaller, id string) {
	m.mu.Lock()
	j := m.jobs[id]
	m.mu.Unlock()
	if j != nil && j.remote() == r {
		m.stop(j, errJobCanceled)
	}
}

// contextError is why the caller's context ended, with its cause when there is one.
func contextError(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, err) {
		return fmt.Errorf("%w: %v", err, cause)
	}
	return fmt.Errorf("dispatch: job %w", err)
}

// resolve settles a job exactly once: the ticket, the counters, the span.
func (m *Master) resolve(j *job, result []byte, err error) {
	m.mu.Lock()
	st, ok := m.resolveLocked(j, result, err, instantNow())
	m.mu.Unlock()
	if ok {
		m.settle(j, st, result, err, nil)
	}
}

// settlement is what resolveLocked read under m.mu for settle.
type settlement struct {
	stopWatch func() bool
	timer     *time.Timer
	running   *workerState // the worker whose slot an attempt still holds
	attempt   int
	followers []observer
	commit    *commitGate // WithOutcomesAfterCommit: the Resolved record's commit
	at        instant     // when the job was resolved
}

// resolveLocked marks j resolved, now, retains its outcome and forgets the job; false if
// it already was. m.mu must be held; settle does the rest once it is released. The
// outcome is retained in the same critical section that takes the job out of m.jobs,
// so that a submission of its id always finds one or the other.
func (m *Master) resolveLocked(j *job, result []byte, err error, now instant) (settlement, bool) {
	if j.state == stateResolved {
		return settlement{}, false
	}
	switch j.state {
	case stateQueued:
		m.unqueueLocked(j) // Close resolves queued jobs too
	case stateOrphan:
		m.unorphanLocked(j)
	}
	j.state = stateResolved
	var gate *commitGate
	if m.jobs[j.id] == j {
		delete(m.jobs, j.id)
		gate = m.recordResolvedLocked(j, result, err, m.retainLocked(j, result, err, now))
	}
	fs := j.followers
	j.followers = nil
	return settlement{stopWatch: j.stopWatch, timer: j.timer, running: j.slot, attempt: j.attempt, followers: fs, commit: gate, at: now}, true
}

// settle is the part of resolving a job done outside m.mu. raw is the worker's encoded
// reply that carries the outcome, if there is one (see observer.resolveRaw).
func (m *Master) settle(j *job, st settlement, result []byte, err error, raw []byte) {
	if st.stopWatch != nil {
		st.stopWatch()
	}
	if st.timer != nil {
		st.timer.Stop()
	}
	j.endSettled()
	if st.running != nil {
		// An attempt still running (Close resolves jobs under way) is ended through
		// its wait: attemptFailed cancels it on the worker and frees its slot.
		st.running.conn.CloseWaitChan(attemptKey(j.id, st.attempt))
	}
	class := classify(err)
	m.resolved[class].Add(1)
	m.noteResolved(j, class, err)
	if class == outcomeOK {
		m.meter.tick(st.at)
	}
	m.metrics.jobResolved(j.tm, class, st.at.sub(j.submittedAt))
	endSpan(j.span, err)
	m.deliver(j, st, result, err, raw)
}

// Close fails every unresolved job with ErrClosed and refuses new ones. Running jobs are
// cancelled on their workers. It does not close the ServerIO.
//
// A durable master (OpenMaster) records none of this: its store keeps every unresolved
// job for the next start, which runs them; remote callers are sent nothing, so that
// they re-attach to their jobs then (their Tickets ride through), while in-process
// Tickets fail with ErrClosed. Close the store after the Master.
func (m *Master) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.stopInsight()
	m.retained.close()
	if m.orphanTimer != nil {
		m.orphanTimer.Stop()
	}
	for t := range m.graceTimers {
		t.Stop()
	}
	m.graceTimers = nil
	if reg := m.metrics.reg; reg != nil {
		_ = reg.Unregister()
	}
	jobs := make([]*job, 0, len(m.jobs))
	for _, j := range m.jobs {
		jobs = append(jobs, j)
		if m.jn != nil {
			// The store keeps the job for the next start, and a remote caller rides
			// through to it: it hears nothing now, and re-attaches then.
			repointTo(j.caller, nil, "")
			for _, t := range j.followers {
				repointTo(t, nil, "")
			}
		}
	}
	m.mu.Unlock()
	for _, j := range jobs {
		m.resolve(j, nil, ErrClosed)
	}
	return nil
}
