// Package store holds the durable state of a banfleet master: every job it accepted
// until the job is resolved and its outcome collected, and the blobs jobs refer to.
//
// Every change of a job's state is one Record (record.go): Submitted, AttemptStarted,
// AttemptEnded, Resolved, Collected, and BlobPut/BlobDeleted for blobs. Records have
// one compact binary encoding (AppendRecord, DecodeRecord; AppendBatch for many at
// once, as a raft log entry will carry them).
//
// State (state.go) is the state machine that applies records. It is pure: no I/O, no
// clock, so the same records always make the same state, and an invalid transition (an
// attempt for an unknown job, a second resolution) is an error that changes nothing.
// It answers what a restarting master needs: the unresolved jobs in submission order,
// queued or with an attempt under way (an orphan to re-adopt); the resolved outcomes
// still held; the blobs; and Lookup of one id, for idempotent resubmission. Snapshot
// and Restore encode the whole state.
//
// A Store applies records and holds their state:
//
//   - NewMem: the state machine alone, in memory.
//   - OpenBolt: a write-ahead log in front of one bbolt file, as etcd puts its WAL in
//     front of its backend. Apply returns once its records are in the log and
//     fdatasynced: one committer goroutine group-commits the records of many
//     concurrent callers as one frame, one append and one fdatasync per batch
//     (committer.go, wal.go), into a segment file filled with zeros ahead of its
//     frames so that the fdatasync writes data pages alone. The committer writes the
//     next batch while the last one's fdatasync runs, two commits in flight, and an
//     acker answers each batch in order once it is durable (flight.go), so a record
//     that arrives during a sync waits for its own sync only; records nobody waits
//     for (ApplyLater) ride with the next commit somebody does (lazy.go). A
//     checkpointer goroutine writes the rows those commits changed into the bbolt
//     file in the background, every 100 ms, and once the segment passes a size
//     (16 MiB) moves the log to a new segment and deletes the old (checkpoint.go);
//     opening loads the file and
//     replays the log after its checkpoint (wal_replay.go). Why: a bbolt
//     commit costs two fsyncs (its data pages, then its meta page) and B+tree work,
//     and the master waits for every commit before it accepts a job or sends an
//     attempt; an append costs one fdatasync of a few sequential pages, and the
//     checkpoint's two fsyncs are shared by every commit of its interval, off the
//     critical path. The file holds the live state, not a log (bolt.go), and the log
//     holds only the commits since the last checkpoint, so both stay bounded under
//     churn. A damaged file or log is an error that names it and says what to do,
//     never a silently empty store.
//
// Large payloads and results are held once, as content-addressed blobs that jobs refer
// to (blob.go), and resolved outcomes are forgotten after a retention period
// (retention.go).
//
// The master applies every job state change to its Store before acting on it and
// rebuilds its queues from Load on start (dispatch.OpenMaster); package cluster
// replicates the same records through raft, applied by the same State on every member
// (export_cluster.go is what it needs from here).
package store
