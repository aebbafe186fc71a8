package store

import (
	"cmp"
	"slices"
	"time"
)

// Retention: a resolved job's outcome is held so that a caller that lost its
// connection, or whose master restarted, can reconnect and collect it, and so that a
// resubmission of its id is answered with it rather than run again. It is held for the
// retention period (WithRetention, default DefaultRetention) counted from the
// Resolved record's At, then forgotten by Expire, which applies a Collected record per
// job. A caller that collects its outcome sooner makes the master apply Collected at
// once.
//
// Expiry goes through records rather than a side effect of time so that every replica
// of the state (the file, later a raft cluster's members) forgets the same jobs at the
// same point of the record sequence.

// Expired returns the ids of the jobs resolved at or before cutoff, oldest first. It
// looks at every job held: call it every few seconds, not per job.
func (s *State) Expired(cutoff time.Time) []string {
	var old []*jobEntry
	for _, e := range s.jobs {
		if e.phase == PhaseResolved && !e.resolvedAt.After(cutoff) {
			old = append(old, e)
		}
	}
	slices.SortFunc(old, func(a, b *jobEntry) int {
		if c := a.resolvedAt.Compare(b.resolvedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	ids := make([]string, len(old))
	for i, e := range old {
		ids[i] = e.spec.ID
	}
	return ids
}

// expiry returns the Collected records that forget what expired by now.
func expiry(s *State, now time.Time, retention time.Duration) ([]string, []Record) {
	ids := s.Expired(now.Add(-retention))
	recs := make([]Record, len(ids))
	for i, id := range ids {
		recs[i] = Collected(id)
	}
	return ids, recs
}
