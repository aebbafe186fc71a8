// Package cluster runs banfleet's master on three (or five) machines that replicate
// its job state through raft, so that no single machine can stop the fleet
// (DESIGN.md §4; docs/operations.md, "Running a cluster").
//
// A Node is one member. It owns github.com/hashicorp/raft (its log and stable store in
// raft-boltdb/v2, snapshots in a FileSnapshotStore, raft's TCP transport), the state
// machine the log is applied to (fsm.go: the same store.State a single durable master
// keeps in its bbolt file), and a banio listener. While it leads, it runs a
// dispatch.Master on a store.Store whose records are raft entries of its term
// (store.go); while it follows, its banio server answers every hello with not_leader
// and where the leader serves (banio.ServerIO.SetNotLeader), and workers and Clients
// given every member's address follow it.
//
// The records: the leader's store group-commits, many calls' records per raft entry,
// each call one group the state machine applies whole or not at all (entry.go); up to
// 32 entries are in flight, and raft's leader writes and replicates what arrived
// meanwhile together. Snapshots are the state's encoding (snapshot.go); a follower that
// fell behind catches up from the leader's snapshot and the log after it.
//
// Leadership (node.go): on gaining it, the node waits for its state machine to apply
// everything committed (raft.Barrier), announces its banio address in the log, and
// opens the master (dispatch.OpenMaster: queued jobs, orphaned attempts and held
// outcomes come back as after a restart). On losing it, the node fences that term's
// store (nothing more is proposed), closes every connection (workers keep running their
// jobs and hold their replies, Clients keep their tickets), then the master.
//
// Fencing: an entry carries the term its master was opened in, and the state machine
// refuses one committed in another term; a Resolved record of a superseded attempt is
// refused; a master that lost its leadership cannot commit, so it cannot accept jobs,
// and since its outcomes reach callers only once committed
// (dispatch.WithOutcomesAfterCommit) its late replies resolve nothing.
//
// Membership (membership.go): AddVoter and RemoveServer on the leader; Status reports
// members, leader, term and indexes. Metrics (metrics.go): leader changes, apply
// latency, records committed, and whether the member leads.
package cluster
