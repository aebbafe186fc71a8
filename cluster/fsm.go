package cluster

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/banfleet/banfleet/store"
)

// fsm is the raft state machine every member runs: it applies the committed entries
// to a store.State, the same pure state machine the bolt store applies its log to, so
// that every member holds the same jobs and blobs, and a new leader's master rebuilds
// its queues from it (dispatch.OpenMaster) as a restarted single master does from its
// file. It implements raft.BatchingFSM: raft hands it every entry committed since the
// last call at once.
//
// It also holds the members' banio addresses, from their announce entries, so that a
// follower can tell workers and clients where the leader serves.
type fsm struct {
	// mu protects the following fields. raft's FSM goroutine writes them (ApplyBatch,
	// Restore); the store's readers (Lookup, Blob, Load) and the node read them.
	mu    sync.RWMutex
	st    *store.State
	addrs map[string]string // banio address by raft server id

	records  atomic.Uint64 // records applied
	rejected atomic.Uint64 // groups refused by the state machine
	fenced   atomic.Uint64 // entries refused for their term
	// index is the raft index of the last entry ApplyBatch was given (raft's own
	// AppliedIndex counts entries handed to the FSM goroutine, not yet applied).
	index atomic.Uint64

	changed chan struct{} // signalled (never blocking) when addrs changes
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM() *fsm {
	return &fsm{st: store.NewState(), addrs: make(map[string]string), changed: make(chan struct{}, 1)}
}

// ErrStaleTerm: an entry proposed by a master of an earlier leadership (fencing by
// term). A master that gets it has lost its leadership and is being closed.
var ErrStaleTerm = errors.New("cluster: entry of an earlier leadership refused")

// ErrStaleAttempt: a Resolved record for an attempt that is not the job's current
// one (fencing by attempt): a late reply of a superseded attempt cannot resolve the
// job. It is an ErrInvalid of the store's, as the state machine's refusals are.
var ErrStaleAttempt = fmt.Errorf("%w: the reply of a superseded attempt", store.ErrWrongPhase)

// applied is the response to a records entry, for the proposer: one error per group
// (nil: applied), or err for the whole entry.
type applied struct {
	errs []error
	err  error
}

// Apply applies one entry.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in order and returns, for each, an *applied
// (records) or nil.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			out[i] = f.applyLocked(l)
		}
	}
	if len(logs) > 0 {
		f.index.Store(logs[len(logs)-1].Index)
	}
	return out
}

func (f *fsm) applyLocked(l *raft.Log) any {
	e, err := decodeEntry(l.Data)
	if err != nil {
		return &applied{err: err}
	}
	if e.term != l.Term {
		f.fenced.Add(1)
		return &applied{err: fmt.Errorf("%w: proposed in term %d, committed in term %d", ErrStaleTerm, e.term, l.Term)}
	}
	switch e.kind {
	case kindAnnounce:
		if f.addrs[e.id] != e.addr {
			f.addrs[e.id] = e.addr
			select {
			case f.changed <- struct{}{}:
			default:
			}
		}
		return nil
	}
	res := &applied{errs: make([]error, len(e.groups))}
	for i, g := range e.groups {
		recs, err := store.DecodeBatch(g)
		if err == nil {
			err = fenceAttempts(f.st, recs)
		}
		if err == nil {
			err = f.st.Apply(recs...)
		}
		if err != nil {
			f.rejected.Add(1)
			res.errs[i] = err
			continue
		}
		f.records.Add(uint64(len(recs)))
	}
	return res
}

// fenceAttempts refuses a group that resolves a running job with the outcome of an
// attempt other than its current one. The master fences late replies itself (a reply
// is awaited under its attempt's key); this keeps the replicated state right should a
// record of a superseded attempt reach the log anyway.
func fenceAttempts(st *store.State, recs []store.Record) error {
	var started map[string]int // attempts this group starts
	for i := range recs {
		r := &recs[i]
		switch r.Kind {
		case store.KindAttemptStarted:
			if started == nil {
				started = make(map[string]int)
			}
			started[r.ID] = r.Attempt
		case store.KindResolved:
			if r.Outcome.Attempt == 0 {
				continue
			}
			cur, ok := started[r.ID]
			if !ok {
				js := st.Lookup(r.ID)
				if js.Phase != store.PhaseRunning {
					continue
				}
				cur = js.Attempt
			}
			if cur != r.Outcome.Attempt {
				return fmt.Errorf("%w: job %q resolved by attempt %d, its current attempt is %d", ErrStaleAttempt, r.ID, r.Outcome.Attempt, cur)
			}
		}
	}
	return nil
}

// addr returns the banio address member id announced, "" if none.
func (f *fsm) addr(id string) string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.addrs[id]
}

// Snapshot captures the state for raft to persist while applying goes on: a Clone
// shares the state's entries, which are never modified.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &snapshot{st: f.st.Clone(), addrs: maps.Clone(f.addrs)}, nil
}

// Restore replaces the state with a snapshot's (a follower that fell behind the
// leader's log, or a member starting from its latest snapshot).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, addrs, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.st, f.addrs = st, addrs
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
	return nil
}
