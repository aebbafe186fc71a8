package cluster

import (
	"reflect"
	"testing"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// The future raft's Apply returns still has the layout abandonOnShutdown relies on:
// a live leader's future takes the node's shutdown channel, and a refused Apply's
// (answered at once) is left alone. If a raft release changes that layout, this fails,
// and Node.Close could again wait for ever on a future raft's shutdown left unanswered.
func TestAbandonOnShutdown(t *testing.T) {
	leakcheck.Check(t)
	c := newTestCluster(t, 1, nil)
	n := c.leader().node
	down := make(chan struct{})
	f := n.raft.Apply(appendAnnounce(nil, n.raft.CurrentTerm(), n.cfg.ID, n.cfg.BanioAddr), testWait)
	if !abandonOnShutdown(f, down) {
		t.Fatalf("raft's Apply future (%T) has no settable ShutdownCh", f)
	}
	if got := reflect.ValueOf(f).Elem().FieldByName("ShutdownCh").Interface(); got != down {
		t.Fatal("ShutdownCh was not set to the node's channel")
	}
	if err := f.Error(); err != nil {
		t.Fatalf("the entry failed: %v", err)
	}

	c.stop(c.members[0])
	refused := n.raft.Apply([]byte("x"), testWait)
	if abandonOnShutdown(refused, down) {
		t.Fatal("a refused Apply's future was changed")
	}
	if refused.Error() == nil {
		t.Fatal("Apply on a shut down raft succeeded")
	}
}
