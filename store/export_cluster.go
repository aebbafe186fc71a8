package store

import "time"

// What a store kept outside this package needs of its internals: the raft-replicated
// store of package cluster applies the same records to the same State, and must
// prepare them, expire outcomes and report its state as the stores here do.

// Prepare turns the payloads and results of recs at or above threshold into blob
// references (Spec.PayloadRef, Outcome.ResultRef), as Apply does before it applies
// them: a store of another package calls it before it encodes records, so that every
// replica holds a large payload once, as a blob. It returns recs itself when nothing
// changes, otherwise a copy; the caller's records are never modified.
func Prepare(recs []Record, threshold int) []Record { return prepare(recs, threshold) }

// Expiry returns the ids of the outcomes whose retention has passed by now, oldest
// first, and the Collected records that forget them: what Expire applies.
func (s *State) Expiry(now time.Time, retention time.Duration) ([]string, []Record) {
	return expiry(s, now, retention)
}

// CountState fills the counts of what st holds (Jobs, Queued, Running, Resolved,
// Blobs, BlobBytes), as every store's Stats does.
func (s *Stats) CountState(st *State) { s.fromState(st) }
