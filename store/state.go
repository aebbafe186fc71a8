package store

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Phase is where a job is in its life, as far as the store knows.
type Phase uint8

// Phases. The values are part of the file format.
const (
	PhaseUnknown  Phase = 0 // the store does not hold the job (never submitted, or collected)
	PhaseQueued   Phase = 1 // waiting for an attempt (new, or after an attempt ended)
	PhaseRunning  Phase = 2 // an attempt is under way on a worker (an orphan after a restart)
	PhaseResolved Phase = 3 // ended; the outcome is held until collected
)

// String returns the phase's name.
func (p Phase) String() string {
	switch p {
	case PhaseUnknown:
		return "unknown"
	case PhaseQueued:
		return "queued"
	case PhaseRunning:
		return "running"
	case PhaseResolved:
		return "resolved"
	}
	return fmt.Sprintf("Phase(%d)", uint8(p))
}

// JobState is what the store holds about one job. Its byte slices and map are shared
// with the store: read them, never modify them.
type JobState struct {
	Phase Phase
	// Seq numbers jobs in submission order (1, 2, …; never reused): the order to
	// rebuild the queues in.
	Seq  uint64
	Spec Spec // the payload is released (nil, no ref) once the job is resolved
	// Attempt is the number of the current attempt (running) or the last one (queued
	// again, resolved); 0 before the first. The next attempt must be numbered above
	// it, so a late reply to an old attempt is never taken for a new one's.
	Attempt int
	// Worker ran attempt Attempt. A running job's attempt after a restart is an
	// orphan: Worker may still be running it and claim it when it re-registers.
	Worker    string
	Spent     int    // attempts counted against Spec.MaxAttempts
	LastError string // why the last attempt ended (AttemptEnded's reason)
	// Outcome and ResolvedAt are set once the job is resolved. The outcome's result
	// may be a blob reference (ResultRef).
	Outcome    *Outcome
	ResolvedAt time.Time
}

// BlobInfo describes a blob the state holds.
type BlobInfo struct {
	Hash   string
	Size   int
	Pinned bool // put by the owner (BlobPut) and not deleted
	Refs   int  // jobs whose payload or result it is
}

// State is the store's state machine: the jobs and blobs that a sequence of records
// leaves. It does no I/O and reads no clock (every time comes in a record), so the
// same records always make the same state, whether they come from Apply, the bolt
// file or, later, a raft log. It is not safe for concurrent use: each Store guards
// its own.
type State struct {
	jobs  map[string]*jobEntry
	blobs map[string]*blobEntry
	seq   uint64 // the last Seq given out

	queued, running, resolved int
	blobBytes                 int64

	// During Apply: how to undo the records applied so far, so a call applies all its
	// records or none.
	undo []undoStep
	// track, when set (by the bolt committer), collects which rows of the file the
	// records changed.
	track *changes
}

// jobEntry is one job. Entries are never modified once in the map: a change puts a new
// entry, so undoing it is putting the old pointer back, and a JobState or a Clone may
// share entries.
type jobEntry struct {
	seq        uint64
	spec       *Spec
	phase      Phase
	attempt    int
	worker     string
	spent      int
	lastErr    string
	outcome    *Outcome
	resolvedAt time.Time
}

// blobEntry is one blob; like jobEntry, never modified once in the map.
type blobEntry struct {
	data   []byte
	pinned bool
	refs   int
}

type undoStep struct {
	key  string
	blob bool // key is a blob hash, else a job id
	job  *jobEntry
	bent *blobEntry
}

// changes is the set of rows a batch of records changed: jobs by Seq (the row key; a
// job collected and resubmitted under the same id has two) and blobs by hash. Only a
// change of what a row holds counts: a blob's reference count is not stored.
type changes struct {
	jobs  map[uint64]string
	blobs map[string]struct{}
}

func newChanges() *changes {
	return &changes{jobs: make(map[uint64]string), blobs: make(map[string]struct{})}
}

// NewState returns an empty state.
func NewState() *State {
	return &State{jobs: make(map[string]*jobEntry), blobs: make(map[string]*blobEntry)}
}

// Apply applies recs in order: all of them, or, when one is refused, none (the error,
// wrapping ErrInvalid, names it). The state retains the records' byte slices and
// trace maps.
func (s *State) Apply(recs ...Record) error {
	s.undo = s.undo[:0]
	seq := s.seq
	for i := range recs {
		if err := s.apply(&recs[i]); err != nil {
			s.rollback(seq)
			return wrapIndex(fmt.Errorf("%w (%s)", err, &recs[i]), i, len(recs))
		}
	}
	s.undo = s.undo[:0]
	return nil
}

// ApplyBatch decodes a batch (AppendBatch) and applies it: what a raft FSM does with a
// log entry.
func (s *State) ApplyBatch(b []byte) error {
	recs, err := DecodeBatch(b)
	if err != nil {
		return err
	}
	return s.Apply(recs...)
}

func wrapIndex(err error, i, n int) error {
	if n == 1 {
		return err
	}
	return fmt.Errorf("%w, record %d of %d", err, i+1, n)
}

func (s *State) rollback(seq uint64) {
	for i := len(s.undo) - 1; i >= 0; i-- {
		u := s.undo[i]
		if u.blob {
			s.setBlob(u.key, u.bent)
		} else {
			s.setJob(u.key, u.job)
		}
	}
	s.undo = s.undo[:0]
	s.seq = seq
}

func (s *State) apply(r *Record) error {
	if err := r.Validate(); err != nil {
		return err
	}
	switch r.Kind {
	case KindSubmitted:
		return s.submitted(r)
	case KindAttemptStarted:
		e, err := s.job(r.ID, PhaseQueued)
		if err != nil {
			return err
		}
		if r.Attempt <= e.attempt {
			return fmt.Errorf("%w: attempt %d after attempt %d", ErrWrongPhase, r.Attempt, e.attempt)
		}
		n := *e
		n.phase, n.attempt, n.worker = PhaseRunning, r.Attempt, r.Worker
		s.putJob(r.ID, &n)
	case KindAttemptEnded:
		e, err := s.job(r.ID, PhaseRunning)
		if err != nil {
			return err
		}
		if r.Attempt != e.attempt {
			return fmt.Errorf("%w: attempt %d ended, but attempt %d is the current one", ErrWrongPhase, r.Attempt, e.attempt)
		}
		n := *e
		n.phase, n.lastErr = PhaseQueued, r.Reason
		if r.Spent {
			n.spent++
		}
		s.putJob(r.ID, &n)
	case KindResolved:
		return s.resolvedRec(r)
	case KindCollected:
		e, err := s.job(r.ID, PhaseResolved)
		if err != nil {
			return err
		}
		if e.outcome.ResultRef != "" {
			s.unref(e.outcome.ResultRef)
		}
		s.putJob(r.ID, nil)
		s.touchJob(e.seq, r.ID)
	case KindBlobPut:
		b := s.blobs[r.Hash]
		switch {
		case b == nil:
			if !r.hashed && BlobHash(r.Data) != r.Hash {
				return badRecord("blob data does not hash to %s", r.Hash)
			}
			s.putBlob(r.Hash, &blobEntry{data: r.Data, pinned: true})
		case !b.pinned:
			n := *b
			n.pinned = true
			s.putBlob(r.Hash, &n)
		}
	case KindBlobDeleted:
		b := s.blobs[r.Hash]
		if b == nil || !b.pinned {
			return fmt.Errorf("%w: %s was not put (or was deleted)", ErrUnknownBlob, r.Hash)
		}
		if b.refs == 0 {
			s.putBlob(r.Hash, nil)
		} else {
			n := *b
			n.pinned = false
			s.putBlob(r.Hash, &n)
		}
	}
	return nil
}

// job returns id's entry, which must be in phase want.
func (s *State) job(id string, want Phase) (*jobEntry, error) {
	e := s.jobs[id]
	if e == nil {
		return nil, fmt.Errorf("%w: no job %q", ErrUnknownJob, id)
	}
	if e.phase != want {
		return nil, fmt.Errorf("%w: job %q is %s, not %s", ErrWrongPhase, id, e.phase, want)
	}
	return e, nil
}

func (s *State) submitted(r *Record) error {
	if s.jobs[r.ID] != nil {
		return fmt.Errorf("%w: %q is %s", ErrDuplicateJob, r.ID, s.jobs[r.ID].phase)
	}
	spec := *r.Spec
	if spec.PayloadRef != "" {
		if err := s.ref(spec.PayloadRef, spec.Payload, r.hashed); err != nil {
			return err
		}
		spec.Payload = nil
	}
	normalizeSpec(&spec)
	s.seq++
	s.putJob(r.ID, &jobEntry{seq: s.seq, spec: &spec, phase: PhaseQueued})
	return nil
}

func (s *State) resolvedRec(r *Record) error {
	e := s.jobs[r.ID]
	if e == nil {
		return fmt.Errorf("%w: no job %q", ErrUnknownJob, r.ID)
	}
	if e.phase == PhaseResolved {
		return fmt.Errorf("%w: job %q is already resolved", ErrWrongPhase, r.ID)
	}
	out := *r.Outcome
	// The result's reference is taken before the payload's is released: when they
	// are the same bytes, the blob must not be dropped in between.
	if out.ResultRef != "" {
		if err := s.ref(out.ResultRef, out.Result, r.hashed); err != nil {
			return err
		}
		out.Result = nil
	}
	if len(out.Result) == 0 {
		out.Result = nil
	}
	n := *e
	n.phase, n.outcome, n.resolvedAt = PhaseResolved, &out, r.At
	if e.spec.PayloadRef != "" || e.spec.Payload != nil {
		// A resolved job never runs again: its payload is released.
		if e.spec.PayloadRef != "" {
			s.unref(e.spec.PayloadRef)
		}
		spec := *e.spec
		spec.Payload, spec.PayloadRef = nil, ""
		n.spec = &spec
	}
	s.putJob(r.ID, &n)
	return nil
}

// normalizeSpec gives empty slices and maps one form, so that a state and its
// reloaded copy are equal.
func normalizeSpec(s *Spec) {
	if len(s.Payload) == 0 {
		s.Payload = nil
	}
	if len(s.Trace) == 0 {
		s.Trace = nil
	}
}

// ref takes a reference to blob hash, storing data as it when the state lacks it.
func (s *State) ref(hash string, data []byte, hashed bool) error {
	b := s.blobs[hash]
	if b == nil {
		if data == nil {
			return fmt.Errorf("%w: %s is referred to but not held", ErrUnknownBlob, hash)
		}
		if !hashed && BlobHash(data) != hash {
			return badRecord("payload or result does not hash to its reference %s", hash)
		}
		s.putBlob(hash, &blobEntry{data: data, refs: 1})
		return nil
	}
	n := *b
	n.refs++
	s.putBlob(hash, &n)
	return nil
}

// unref releases a reference to blob hash, dropping the blob when nothing holds it.
func (s *State) unref(hash string) {
	b := s.blobs[hash]
	if b == nil {
		return // cannot happen: every reference was counted
	}
	if b.refs <= 1 && !b.pinned {
		s.putBlob(hash, nil)
		return
	}
	n := *b
	n.refs--
	s.putBlob(hash, &n)
}

// putJob replaces id's entry with e (nil: removes it), remembering how to undo it.
func (s *State) putJob(id string, e *jobEntry) {
	old := s.jobs[id]
	s.undo = append(s.undo, undoStep{key: id, job: old})
	s.setJob(id, e)
	if e != nil {
		s.touchJob(e.seq, id)
	}
}

func (s *State) putBlob(hash string, b *blobEntry) {
	old := s.blobs[hash]
	s.undo = append(s.undo, undoStep{key: hash, blob: true, bent: old})
	s.setBlob(hash, b)
	if s.track != nil && (old == nil || b == nil || old.pinned != b.pinned) {
		s.track.blobs[hash] = struct{}{}
	}
}

func (s *State) touchJob(seq uint64, id string) {
	if s.track != nil {
		s.track.jobs[seq] = id
	}
}

// setJob puts e under id (nil: deletes), keeping the counts.
func (s *State) setJob(id string, e *jobEntry) {
	if old := s.jobs[id]; old != nil {
		s.count(old.phase, -1)
	}
	if e == nil {
		delete(s.jobs, id)
		return
	}
	s.count(e.phase, 1)
	s.jobs[id] = e
}

func (s *State) count(p Phase, d int) {
	switch p {
	case PhaseQueued:
		s.queued += d
	case PhaseRunning:
		s.running += d
	case PhaseResolved:
		s.resolved += d
	}
}

func (s *State) setBlob(hash string, b *blobEntry) {
	if old := s.blobs[hash]; old != nil {
		s.blobBytes -= int64(len(old.data))
	}
	if b == nil {
		delete(s.blobs, hash)
		return
	}
	s.blobBytes += int64(len(b.data))
	s.blobs[hash] = b
}

// Lookup returns what the state holds about job id; Phase is PhaseUnknown (and the
// rest zero) when it holds nothing. This is how the master answers a resubmitted id:
// attach to a queued or running job, answer a resolved one with its outcome, run an
// unknown one.
func (s *State) Lookup(id string) JobState {
	e := s.jobs[id]
	if e == nil {
		return JobState{}
	}
	return e.view()
}

func (e *jobEntry) view() JobState {
	return JobState{
		Phase: e.phase, Seq: e.seq, Spec: *e.spec, Attempt: e.attempt, Worker: e.worker,
		Spent: e.spent, LastError: e.lastErr, Outcome: e.outcome, ResolvedAt: e.resolvedAt,
	}
}

// Unresolved returns the queued and running jobs in submission order (Seq): what a
// master rebuilds its queues from on start. A running job there is an orphaned
// attempt, to re-adopt when its worker claims it.
func (s *State) Unresolved() []JobState {
	return s.list(func(e *jobEntry) bool { return e.phase != PhaseResolved })
}

// Outcomes returns the resolved, not yet collected, jobs in submission order.
func (s *State) Outcomes() []JobState {
	return s.list(func(e *jobEntry) bool { return e.phase == PhaseResolved })
}

func (s *State) list(keep func(*jobEntry) bool) []JobState {
	var out []JobState
	for _, e := range s.jobs {
		if keep(e) {
			out = append(out, e.view())
		}
	}
	slices.SortFunc(out, func(a, b JobState) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// Counts returns how many jobs are queued, running and resolved.
func (s *State) Counts() (queued, running, resolved int) {
	return s.queued, s.running, s.resolved
}

// Len returns how many jobs the state holds.
func (s *State) Len() int { return len(s.jobs) }

// Payload returns job id's payload, from its spec or from the blob it refers to; false
// if the state holds no such job or the job's payload was released (it is resolved).
func (s *State) Payload(id string) ([]byte, bool) {
	e := s.jobs[id]
	if e == nil || e.phase == PhaseResolved {
		return nil, false
	}
	if e.spec.PayloadRef != "" {
		return s.Blob(e.spec.PayloadRef)
	}
	return e.spec.Payload, true
}

// Blob returns blob hash's bytes (shared: do not modify them).
func (s *State) Blob(hash string) ([]byte, bool) {
	b := s.blobs[hash]
	if b == nil {
		return nil, false
	}
	return b.data, true
}

// Blobs describes every blob held, by hash.
func (s *State) Blobs() []BlobInfo {
	out := make([]BlobInfo, 0, len(s.blobs))
	for h, b := range s.blobs {
		out = append(out, BlobInfo{Hash: h, Size: len(b.data), Pinned: b.pinned, Refs: b.refs})
	}
	slices.SortFunc(out, func(a, b BlobInfo) int { return cmp.Compare(a.Hash, b.Hash) })
	return out
}

// BlobBytes returns the bytes of all blobs held together.
func (s *State) BlobBytes() int64 { return s.blobBytes }

// Clone returns an independent copy of the state. It is cheap: entries are shared,
// never modified.
func (s *State) Clone() *State {
	c := &State{
		jobs: make(map[string]*jobEntry, len(s.jobs)), blobs: make(map[string]*blobEntry, len(s.blobs)),
		seq: s.seq, queued: s.queued, running: s.running, resolved: s.resolved, blobBytes: s.blobBytes,
	}
	for k, v := range s.jobs {
		c.jobs[k] = v
	}
	for k, v := range s.blobs {
		c.blobs[k] = v
	}
	return c
}
