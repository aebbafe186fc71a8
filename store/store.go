package store

import (
	"context"
	"time"
)

// Store applies records and holds the state they make. The master applies every job
// state change to its Store before acting on it, and rebuilds its queues from Load on
// start; it never writes around the Store.
//
// All methods are safe for concurrent use.
type Store interface {
	// Apply applies recs in order, all of them or none: a call whose records the
	// state machine refuses (ErrInvalid) changes nothing, and other callers' records
	// are not affected. It returns once the records are durable: for the bolt store,
	// committed and fsynced; the in-memory store applies them at once. ctx bounds
	// only the wait to be accepted; records accepted are applied, and Apply waits for
	// their commit. The store retains the records' byte slices.
	Apply(ctx context.Context, recs ...Record) error
	// ApplyThen is Apply without the wait, for callers that must not block (the
	// master applies records under its lock and on connections' read loops): it
	// queues recs and returns at once. then, if not nil, is called once the records
	// are durable, or with the error that refused them, on a goroutine of the
	// store's and never before ApplyThen returns; it must not block. Records of
	// successive Apply and ApplyThen calls are applied in the order of the calls. If
	// ApplyThen returns an error (the store is closed or failed), nothing was queued
	// and then is not called.
	ApplyThen(then func(error), recs ...Record) error
	// Load returns a copy of the state as of the last commit: what a master rebuilds
	// its queues, orphaned attempts and held outcomes from.
	Load() (*State, error)
	// Lookup returns what the store holds about job id (PhaseUnknown if nothing). It
	// reflects every record accepted so far, including any still being committed.
	Lookup(id string) JobState
	// Blob returns blob hash's bytes (shared: do not modify them), or an error
	// wrapping ErrUnknownBlob.
	Blob(hash string) ([]byte, error)
	// Expire forgets the outcomes of jobs resolved at or before now minus the
	// retention (WithRetention), applying a Collected record for each, and returns
	// their ids. The owner calls it from time to time with its clock's now (the
	// state machine reads no clock).
	Expire(ctx context.Context, now time.Time) ([]string, error)
	// Stats reports what the store did and holds.
	Stats() Stats
	// Close stops the store; records accepted before are committed first. Apply
	// afterwards fails with ErrClosed.
	Close() error
}

// Stats is what a store did and holds.
type Stats struct {
	Records  uint64 // records applied
	Rejected uint64 // Apply calls refused (ErrInvalid)
	// Commits counts the bolt store's commits: frames appended to its log and
	// fdatasynced, each with the records of every Apply call it gathered.
	// Checkpoints counts the bbolt transactions that brought the file up to date
	// with the log. Fsyncs counts every fsync: one per commit, two per checkpoint
	// (bbolt syncs its data pages, then the meta page that makes them current) and
	// one per log segment created (its directory); none with WithNoSync. All are 0
	// for the in-memory store.
	Commits     uint64
	Checkpoints uint64
	Fsyncs      uint64
	MeanBatch   float64       // records per commit
	MaxBatch    int           // the most records one commit held
	CommitTime  time.Duration // time spent committing (encoding, appending, syncing), in total

	FileBytes int64 // the file's size (bolt)
	WALBytes  int64 // the log's size: every segment not yet deleted (bolt)
	FreePages int   // pages of the file free for reuse (bolt)

	Jobs, Queued, Running, Resolved int   // jobs held, and by phase
	Blobs                           int   // blobs held
	BlobBytes                       int64 // their bytes
}

func (s *Stats) fromState(st *State) {
	s.Jobs = st.Len()
	s.Queued, s.Running, s.Resolved = st.Counts()
	s.Blobs, s.BlobBytes = len(st.blobs), st.blobBytes
}
