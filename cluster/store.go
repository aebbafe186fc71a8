package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/banfleet/banfleet/store"
)

// termStore is the store.Store a leader's master applies its records to, for one
// leadership term: its records become raft log entries, stamped with the term, and it
// is closed (every later Apply fails with ErrNotLeader) when the leadership ends. A new
// leadership gets a new termStore and a new master.
//
// Group commit, as the bolt store's committer does for its log (store/committer.go):
// Apply and ApplyThen queue their records; one committer goroutine takes everything
// pending, gathering while callers keep arriving (it yields the processor and looks
// again, up to maxDelay), and proposes it as one raft entry, each call's records one
// group that the state machine applies whole or not at all. Up to maxInflight entries
// are proposed ahead of their commit (raft pipelines them to the followers); when that
// many are outstanding, the committer waits, and what arrives meanwhile makes the
// next entry larger: under load, one entry per commit round trip carries the records
// of every caller. One waiter goroutine takes the entries' results in order and calls
// back each call's caller, so callbacks run in the order of the calls.
type termStore struct {
	r        *raft.Raft
	raftDown chan struct{} // closed once raft has shut down (abandon.go)
	fsm      *fsm
	term     uint64
	opts     storeOptions
	metrics  *metrics

	// mu protects the following fields.
	mu           sync.Mutex
	pending      []*request
	pendingBytes int
	closing      bool
	fenced       bool  // the leadership is over: what is queued fails, unproposed
	failed       error // the first proposal error: the store takes nothing more

	broke    chan struct{} // closed with the first failure (Node restarts the leadership)
	kick     chan struct{}
	inflight chan *proposal
	stopped  chan struct{} // closed when the waiter has answered everything

	commits     atomic.Uint64
	batchRecs   atomic.Uint64
	maxBatch    atomic.Int64
	commitNanos atomic.Int64
}

var _ store.Store = (*termStore)(nil)

// maxInflight is how many entries a leader's store proposes ahead of their commit.
// raft's leader gathers what was proposed meanwhile into one write of its log and
// one AppendEntries, so more entries in flight cost no more fsyncs; with 4, 64
// callers measured 0.25× dispatch-w4 (the entries waited for each other's commits),
// with 32 0.35×, with 128 no better.
const maxInflight = 32

// storeOptions are a termStore's settings (Config's).
type storeOptions struct {
	blobThreshold int
	retention     time.Duration
	maxDelay      time.Duration // longest a gathering entry waits for more callers
	maxEntryBytes int           // an entry closes at this size (one call always fits alone)
	maxInflight   int           // entries proposed and not yet committed
	applyTimeout  time.Duration // bounds raft.Apply's wait to enqueue an entry
}

// request is one call waiting for the committer.
type request struct {
	recs   []store.Record
	expire bool      // Expire: the committer makes recs from the state
	now    time.Time // Expire's now
	load   bool      // Load: the waiter copies the state once what came before is applied

	then  func(error)
	err   error
	ids   []string
	state *store.State
	done  chan struct{}
}

// proposal is one entry proposed to raft and the calls it answers.
type proposal struct {
	f       raft.ApplyFuture // nil when the batch held nothing to propose (only loads)
	reqs    []*request
	group   []int // the group of each request in the entry, -1 for none
	records int
	start   time.Time
	fenced  bool // not proposed: the store was fenced first
}

func newTermStore(r *raft.Raft, raftDown chan struct{}, f *fsm, term uint64, opts storeOptions, m *metrics) *termStore {
	s := &termStore{
		r: r, raftDown: raftDown, fsm: f, term: term, opts: opts, metrics: m,
		kick:     make(chan struct{}, 1),
		broke:    make(chan struct{}),
		inflight: make(chan *proposal, max(opts.maxInflight, 1)-1),
		stopped:  make(chan struct{}),
	}
	go s.commit()
	go s.wait()
	return s
}

// ErrNotLeader: this member is not (or no longer) the cluster's leader, so it applies
// nothing: a master that gets it has lost its leadership and is being closed, and
// its callers' jobs ride through to the new leader.
// It wraps store.ErrFenced, which is how dispatch tells a leadership that ended from
// a store that failed.
var ErrNotLeader = fmt.Errorf("cluster: not the leader (%w)", store.ErrFenced)

// proposeError says why an entry was not committed.
func proposeError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return fmt.Errorf("cluster: raft did not commit the records: %w", err)
}

// Apply queues recs and waits for their commit (see store.Store.Apply). ctx is only
// checked on entry.
func (s *termStore) Apply(ctx context.Context, recs ...store.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &request{recs: store.Prepare(recs, s.opts.blobThreshold), done: make(chan struct{})}
	if err := s.enqueue(req); err != nil {
		return err
	}
	<-req.done
	return req.err
}

// ApplyThen queues recs and returns; then learns the outcome from the waiter
// goroutine (see store.Store.ApplyThen).
func (s *termStore) ApplyThen(then func(error), recs ...store.Record) error {
	if then == nil {
		then = func(error) {}
	}
	return s.enqueue(&request{recs: store.Prepare(recs, s.opts.blobThreshold), then: then})
}

// Load returns a copy of the state once every record queued before is applied.
func (s *termStore) Load() (*store.State, error) {
	req := &request{load: true, done: make(chan struct{})}
	if err := s.enqueue(req); err != nil {
		return nil, err
	}
	<-req.done
	return req.state, req.err
}

// Expire forgets the outcomes whose retention has passed by now, in one entry.
func (s *termStore) Expire(ctx context.Context, now time.Time) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := &request{expire: true, now: now, done: make(chan struct{})}
	if err := s.enqueue(req); err != nil {
		return nil, err
	}
	<-req.done
	return req.ids, req.err
}

// Lookup returns what the replicated state holds about job id: what the records
// committed and applied so far made, not those still being committed.
func (s *termStore) Lookup(id string) store.JobState {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.st.Lookup(id)
}

// Blob returns blob hash's bytes from the replicated state.
func (s *termStore) Blob(hash string) ([]byte, error) {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	if b, ok := s.fsm.st.Blob(hash); ok {
		return b, nil
	}
	return nil, fmt.Errorf("%w: %s", store.ErrUnknownBlob, hash)
}

// Stats reports the entries this term's master committed and the state held.
// Commits counts raft entries; CommitTime is the time from proposing them to their
// being applied.
func (s *termStore) Stats() store.Stats {
	st := store.Stats{
		Records: s.fsm.records.Load(), Rejected: s.fsm.rejected.Load(),
		Commits: s.commits.Load(), MaxBatch: int(s.maxBatch.Load()),
		CommitTime: time.Duration(s.commitNanos.Load()),
	}
	if st.Commits > 0 {
		st.MeanBatch = float64(s.batchRecs.Load()) / float64(st.Commits)
	}
	s.fsm.mu.RLock()
	st.CountState(s.fsm.st)
	s.fsm.mu.RUnlock()
	return st
}

// Close stops the store: what was queued before is proposed (and fails at once when
// the leadership is gone), and Close returns once every call has its answer.
func (s *termStore) Close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	<-s.stopped
	return nil
}

// fence ends the store's leadership now: later calls fail, and what is queued but not
// yet proposed fails instead of being proposed (entries already proposed may still
// commit). The node fences a leadership's store before it closes the master's
// connections, so that what the master makes of its workers' loss (attempts ended,
// jobs queued again) never reaches the log: the next leader must find those jobs
// running, for their workers to claim.
func (s *termStore) fence() {
	s.mu.Lock()
	s.closing, s.fenced = true, true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *termStore) enqueue(r *request) error {
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrNotLeader, store.ErrClosed)
	case s.failed != nil:
		err := s.failed
		s.mu.Unlock()
		return err
	}
	first := len(s.pending) == 0
	s.pending = append(s.pending, r)
	s.pendingBytes += r.size()
	s.mu.Unlock()
	if first {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// size estimates a request's bytes in an entry.
func (r *request) size() int {
	n := 16
	for i := range r.recs {
		rec := &r.recs[i]
		n += 64 + len(rec.Data)
		if rec.Spec != nil {
			n += len(rec.Spec.Payload)
		}
		if rec.Outcome != nil {
			n += len(rec.Outcome.Result) + len(rec.Outcome.Message)
		}
	}
	return n
}

// commit is the committer goroutine: the only one that proposes this store's entries.
func (s *termStore) commit() {
	defer close(s.inflight)
	var buf, scratch []byte
	for {
		s.mu.Lock()
		n, closing := len(s.pending), s.closing
		s.mu.Unlock()
		if n == 0 {
			if closing {
				return
			}
			<-s.kick
			continue
		}
		if !closing {
			s.gather(n)
		}
		batch := s.take()
		s.mu.Lock()
		fenced := s.fenced
		s.mu.Unlock()
		if fenced {
			s.inflight <- &proposal{reqs: batch, group: make([]int, len(batch)), fenced: true}
			continue
		}
		p := &proposal{reqs: batch, group: make([]int, len(batch)), start: time.Now()}
		groups := 0
		for i, r := range batch {
			p.group[i] = -1
			if r.expire {
				s.fsm.mu.RLock()
				r.ids, r.recs = s.fsm.st.Expiry(r.now, s.opts.retention)
				s.fsm.mu.RUnlock()
			}
			if len(r.recs) > 0 {
				p.group[i] = groups
				groups++
				p.records += len(r.recs)
			}
		}
		if groups > 0 {
			buf = appendRecordsHeader(buf[:0], s.term, groups)
			for _, r := range batch {
				if len(r.recs) > 0 {
					scratch = store.AppendBatch(scratch[:0], r.recs)
					buf = appendGroup(buf, scratch)
				}
			}
			// raft keeps the entry's bytes (its log, the FSM's records alias them):
			// each entry gets its own copy, and buf is reused.
			data := append([]byte(nil), buf...)
			p.f = s.r.Apply(data, s.opts.applyTimeout)
			abandonOnShutdown(p.f, s.raftDown)
			if cap(buf) > 4*s.opts.maxEntryBytes {
				buf, scratch = nil, nil
			}
		}
		s.inflight <- p
	}
}

// gather lets the entry grow while callers keep queueing: it yields and looks again,
// until a yield brings nothing, the entry is full, or maxDelay has passed.
func (s *termStore) gather(n int) {
	deadline := time.Now().Add(s.opts.maxDelay)
	for {
		runtime.Gosched()
		s.mu.Lock()
		now, size, closing := len(s.pending), s.pendingBytes, s.closing
		s.mu.Unlock()
		if closing || now == n || size >= s.opts.maxEntryBytes || !time.Now().Before(deadline) {
			return
		}
		n = now
	}
}

// take removes the next entry's calls from the queue: whole calls, up to
// maxEntryBytes (at least one call, however large).
func (s *termStore) take() []*request {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, size := 0, 0
	for n < len(s.pending) && (n == 0 || size+s.pending[n].size() <= s.opts.maxEntryBytes) {
		size += s.pending[n].size()
		n++
	}
	batch := s.pending[:n:n]
	if n == len(s.pending) {
		s.pending = nil
	} else {
		s.pending = s.pending[n:]
	}
	s.pendingBytes -= size
	return batch
}

// wait is the waiter goroutine: it takes the proposals' results in order and answers
// their calls.
func (s *termStore) wait() {
	defer close(s.stopped)
	for p := range s.inflight {
		var res *applied
		var err error
		if p.fenced {
			err = fmt.Errorf("%w: %w", ErrNotLeader, store.ErrClosed)
		}
		if p.f != nil {
			if err = p.f.Error(); err != nil {
				err = proposeError(err)
				s.fail(err)
			} else {
				res, _ = p.f.Response().(*applied)
				if res == nil {
					res = &applied{err: fmt.Errorf("%w: no response for a records entry", errMalformedEntry)}
				}
				d := time.Since(p.start)
				s.commits.Add(1)
				s.batchRecs.Add(uint64(p.records))
				s.commitNanos.Add(int64(d))
				if int64(p.records) > s.maxBatch.Load() {
					s.maxBatch.Store(int64(p.records))
				}
				s.metrics.applied(d, p.records)
			}
		}
		for i, r := range p.reqs {
			switch {
			case err != nil:
				r.err = err
			case r.load:
				s.fsm.mu.RLock()
				r.state = s.fsm.st.Clone()
				s.fsm.mu.RUnlock()
			case p.group[i] < 0: // nothing to propose (an Expire with nothing expired)
			case res.err != nil:
				r.err = res.err
			case p.group[i] >= len(res.errs):
				r.err = fmt.Errorf("%w: %d group results for a larger entry", errMalformedEntry, len(res.errs))
			default:
				r.err = res.errs[p.group[i]]
			}
			if r.err != nil {
				r.ids = nil
			}
			if r.then != nil {
				r.then(r.err)
			} else {
				close(r.done)
			}
		}
	}
}

// fail makes err the store's failure: nothing is queued after it, and broke closes.
func (s *termStore) fail(err error) {
	s.mu.Lock()
	if s.failed == nil {
		s.failed = err
		close(s.broke)
	}
	s.mu.Unlock()
}

// failure is the store's failure once broke is closed.
func (s *termStore) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}
