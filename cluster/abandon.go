package cluster

import (
	"reflect"

	"github.com/hashicorp/raft"
)

// Futures that raft's shutdown leaves unanswered. raft answers an entry's future once
// its state machine has applied the entry; raft.Shutdown ends the state machine's
// goroutine while committed entries may still be queued for it (raft v1.7.3: runFSM
// returns on shutdown, its queue of batches unread), and their futures are then never
// answered. A leader's store waits on its futures in order (termStore.wait), so one
// such future kept Node.Close waiting for ever (seen under load in the cluster tests
// and the bench, about one close in ten).
//
// raft has the remedy for its other futures: deferError, embedded in each, has an
// exported ShutdownCh field that Error also selects on, returning ErrRaftShutdown once
// it is closed; Apply just does not set it. abandonOnShutdown sets it to the node's
// raftDown, closed when raft.Shutdown has returned, so that a future raft will never
// answer fails as "raft shut down" instead: its records may have committed, which is
// what ErrNotLeader tells the callers (they re-attach to the next leader, which holds
// whatever the log kept).

// abandonOnShutdown makes f's Error return raft.ErrRaftShutdown once down is closed,
// if f has raft's future layout; it reports whether it could. TestAbandonOnShutdown
// fails if a raft release changes that layout.
func abandonOnShutdown(f raft.ApplyFuture, down chan struct{}) bool {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return false // an errorFuture (Apply refused at once): already answered
	}
	field := v.Elem().FieldByName("ShutdownCh")
	if !field.IsValid() || !field.CanSet() || field.Type() != reflect.TypeOf(down) {
		return false
	}
	field.Set(reflect.ValueOf(down))
	return true
}
