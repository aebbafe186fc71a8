package dispatch

import "sync"

// Outcomes after their commit. A durable master tells a job's caller its outcome as
// soon as it has it, without waiting for the Resolved record's commit: when the master
// dies in between, the store still holds the job running, and its worker claims it
// with its reply on the next start (orphan.go), so the caller that heard the outcome
// and the store agree. A master on a replicated store (package cluster) can also lose
// its leadership while it keeps running: cut off from the other members, it is still
// handed its workers' replies for a moment, but its records no longer commit. With
// WithOutcomesAfterCommit such a late reply resolves nothing a caller sees: the
// outcome waits for its record's commit, and a commit that fails leaves the caller to
// re-attach to the next leader, which holds the job as its store says.

// WithOutcomesAfterCommit makes a durable master (OpenMaster) deliver each job's
// outcome to its callers only once the store has committed the job's Resolved record.
// If the commit fails (the store failed, or a replicated store's leadership ended),
// remote callers hear nothing and re-attach to their jobs where the store's state
// lives on, and in-process Tickets fail with ErrClosed. Likewise a remote submission
// whose Submitted record does not commit, or that arrives once the store has failed,
// is not answered: its Client re-attaches (to the next leader, which does not hold
// the job) and submits it again; an in-process Submit fails. It costs each job the latency
// of one more commit before its caller hears. package cluster sets it on every
// leader's master; a master with no store ignores it.
func WithOutcomesAfterCommit() Option {
	return func(o *options) { o.afterCommit = true }
}

// commitGate holds back one outcome's delivery until its Resolved record commits.
type commitGate struct {
	mu   sync.Mutex
	done bool
	err  error
	fn   func(error) // the delivery, once settle has it
}

// committed is the record's store callback.
func (g *commitGate) committed(err error) {
	g.mu.Lock()
	g.done, g.err = true, err
	fn := g.fn
	g.mu.Unlock()
	if fn != nil {
		fn(err)
	}
}

// then runs fn with the commit's verdict: now if it is known, else when it is.
func (g *commitGate) then(fn func(error)) {
	g.mu.Lock()
	if !g.done {
		g.fn = fn
		g.mu.Unlock()
		return
	}
	err := g.err
	g.mu.Unlock()
	fn(err)
}

// deliver resolves j's caller and its followers with the outcome: at once, or once
// its record has committed (WithOutcomesAfterCommit). raw, the worker's reply, may be
// lent only for the call (attempt.done): it is forwarded at once or not at all, and an
// outcome delivered after its commit is encoded again.
func (m *Master) deliver(j *job, st settlement, result []byte, err error, raw []byte) {
	if st.commit == nil {
		resolveObservers(j, st.followers, result, err, raw)
		return
	}
	raw = nil
	// Only here a closure: one per job would be an allocation per job.
	resolve := func(result []byte, err error, raw []byte) {
		resolveObservers(j, st.followers, result, err, raw)
	}
	st.commit.then(func(cerr error) {
		if cerr == nil {
			resolve(result, err, raw)
			return
		}
		// Not committed: the job lives on in the store as it was. Remote callers
		// hear nothing (they re-attach to it where the store lives on); in-process
		// ones fail as at Close.
		m.mu.Lock()
		repointTo(j.caller, nil, "")
		for _, t := range st.followers {
			repointTo(t, nil, "")
		}
		m.mu.Unlock()
		resolve(nil, ErrClosed, nil)
	})
}

// resolveObservers resolves j's caller and followers with the outcome.
func resolveObservers(j *job, followers []observer, result []byte, err error, raw []byte) {
	j.caller.resolveRaw(result, err, raw)
	for _, t := range followers {
		t.resolveRaw(result, err, raw)
	}
}

// unheardLocked makes j's remote callers hear nothing of how it ends here: its
// Submitted record did not commit, and they are to submit it again where the store
// lives on. m.mu must be held.
func (m *Master) unheardLocked(j *job) {
	repointTo(j.caller, nil, "")
	for _, t := range j.followers {
		repointTo(t, nil, "")
	}
}
