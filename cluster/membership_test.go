package cluster

import (
	"context"
	"errors"
	"testing"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// A member is added at run time on the leader, catches up, and shows in every
// member's Status with the banio address it was added with; then it is removed. A
// follower refuses membership changes and names the leader.
func TestMembershipAddRemove(t *testing.T) {
	leakcheck.Check(t)
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()

	m4 := &testMember{cfg: Config{
		ID: "m4", RaftBind: "127.0.0.1:0", DataDir: t.TempDir(),
		HeartbeatTimeout: testHeartbeat, ElectionTimeout: testHeartbeat, LeaderLeaseTimeout: testLease, NoSync: true,
	}}
	c.start(m4)
	c.members = append(c.members, m4)
	for _, m := range c.members {
		if m != lead && m != m4 {
			err := m.node.AddVoter(ctx, "m4", m4.node.RaftAddr(), m4.node.BanioAddr())
			if !errors.Is(err, ErrNotLeaderHere) {
				t.Fatalf("a follower's AddVoter: %v, want ErrNotLeaderHere", err)
			}
			break
		}
	}
	if err := lead.node.AddVoter(ctx, "m4", m4.node.RaftAddr(), m4.node.BanioAddr()); err != nil {
		t.Fatal(err)
	}
	c.lifecycles("after-add-", 3, []byte("x"))
	c.converged()
	// The leader's view: m4's banio address comes from the log, not from m4 itself.
	st := c.leader().node.Status()
	found := false
	for _, mem := range st.Members {
		if mem.ID == "m4" && mem.Voter && mem.BanioAddr == m4.node.BanioAddr() {
			found = true
		}
	}
	if len(st.Members) != 4 || !found || st.Leader != c.leader().cfg.ID {
		t.Fatalf("after the add, the leader sees %+v", st)
	}

	if err := c.leader().node.RemoveServer(ctx, "m4"); err != nil {
		t.Fatal(err)
	}
	if st := c.leader().node.Status(); len(st.Members) != 3 {
		t.Fatalf("after the removal, the leader's members are %+v", st.Members)
	}
}
