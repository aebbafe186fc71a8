package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/banfleet/banfleet/store"
)

// Timings for tests on loopback: elections in well under a second, yet slow enough
// that two busy shared cores under -race do not make leaders flap.
const (
	testHeartbeat = 500 * time.Millisecond
	testLease     = 500 * time.Millisecond
	// testWait bounds every wait for an event in these tests.
	testWait = 20 * time.Second
)

// testMember is what a test keeps of a member to restart it on the same addresses
// and data directory.
type testMember struct {
	cfg  Config
	node *Node
}

// testCluster runs n members on loopback, bootstrapped together.
type testCluster struct {
	t       testing.TB
	members []*testMember
}

// newTestCluster opens n members with real raft over loopback TCP and real bbolt
// files in t.TempDir(), bootstraps them and waits for a leader. tune, if not nil,
// changes each member's Config first.
func newTestCluster(t testing.TB, n int, tune func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	for i := range n {
		cfg := Config{
			ID: fmt.Sprintf("m%d", i+1), RaftBind: "127.0.0.1:0", DataDir: t.TempDir(),
			HeartbeatTimeout: testHeartbeat, ElectionTimeout: testHeartbeat, LeaderLeaseTimeout: testLease,
			NoSync: true,
		}
		if os.Getenv("CLUSTER_TEST_LOG") != "" {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		if tune != nil {
			tune(&cfg)
		}
		m := &testMember{cfg: cfg}
		c.start(m)
		// Restarts reuse the ports the first start picked.
		m.cfg.RaftBind = m.node.RaftAddr()
		c.members = append(c.members, m)
	}
	t.Cleanup(c.close)
	var peers []Peer
	for _, m := range c.members {
		peers = append(peers, Peer{ID: m.cfg.ID, RaftAddr: m.node.RaftAddr()})
	}
	if err := c.members[0].node.Bootstrap(peers); err != nil {
		t.Fatal(err)
	}
	c.leader()
	return c
}

// start opens m's node, on a new banio listener (the old port when it had one).
func (c *testCluster) start(m *testMember) {
	c.t.Helper()
	addr := "127.0.0.1:0"
	if m.cfg.BanioAddr != "" {
		addr = m.cfg.BanioAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		c.t.Fatal(err)
	}
	m.cfg.Listener, m.cfg.BanioAddr = ln, ln.Addr().String()
	node, err := Open(m.cfg)
	if err != nil {
		_ = ln.Close()
		c.t.Fatal(err)
	}
	m.node = node
}

// stop closes m's node (in process, as a crash of its process would end it, but with
// its files closed cleanly).
func (c *testCluster) stop(m *testMember) {
	if m.node != nil {
		if err := m.node.Close(); err != nil {
			c.t.Errorf("close %s: %v", m.cfg.ID, err)
		}
		m.node = nil
	}
}

func (c *testCluster) close() {
	for _, m := range c.members {
		c.stop(m)
	}
}

// leader waits until exactly one running member leads with its master open, and
// returns it. It waits on the members' role changes, bounded by testWait.
func (c *testCluster) leader() *testMember {
	c.t.Helper()
	deadline := time.After(testWait)
	for {
		var lead *testMember
		var waits []<-chan struct{}
		for _, m := range c.members {
			if m.node == nil {
				continue
			}
			waits = append(waits, m.node.Changed())
			if m.node.Master() != nil {
				lead = m
			}
		}
		if lead != nil {
			return lead
		}
		select {
		case <-anyOf(waits):
		case <-deadline:
			c.t.Fatalf("no leader within %v", testWait)
		}
	}
}

// anyOf is closed when any of chs is.
func anyOf(chs []<-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	stop := make(chan struct{})
	for _, ch := range chs {
		go func() {
			select {
			case <-ch:
				select {
				case out <- struct{}{}:
				case <-stop:
				}
			case <-stop:
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		<-out
		close(stop)
		close(done)
	}()
	return done
}

// leaderStore is the leader's term store.
func (c *testCluster) leaderStore() *termStore {
	c.t.Helper()
	lead := c.leader()
	lead.node.mu.Lock()
	defer lead.node.mu.Unlock()
	return lead.node.role.st
}

// caughtUp waits until m's state machine has applied every entry the leader's has.
// raft reports no event for a follower's progress, so this polls, every 5 ms and for
// at most testWait.
func (c *testCluster) caughtUp(m *testMember) {
	c.t.Helper()
	want := c.leader().node.fsm.index.Load()
	deadline := time.Now().Add(testWait)
	for m.node.fsm.index.Load() < want {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s applied up to %d, the leader up to %d, within %v", m.cfg.ID, m.node.fsm.index.Load(), want, testWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// converged waits until every running member has applied what the leader has and
// holds the same state, and fails the test if they differ once the leader has stopped
// applying. Like caughtUp it polls, bounded by testWait.
func (c *testCluster) converged() {
	c.t.Helper()
	deadline := time.Now().Add(testWait)
	lead := c.leader()
	for {
		idx := lead.node.fsm.index.Load()
		for _, m := range c.members {
			if m.node != nil {
				c.caughtUp(m)
			}
		}
		want, same := snapshotOf(lead), true
		for _, m := range c.members {
			if m.node != nil && !bytes.Equal(snapshotOf(m), want) {
				same = false
			}
		}
		if same {
			return
		}
		if lead.node.fsm.index.Load() == idx || time.Now().After(deadline) {
			c.t.Fatalf("the members' states differ at index %d", idx)
		}
	}
}

// lookup is what m's state machine holds about job id.
func lookup(m *testMember, id string) store.JobState {
	m.node.fsm.mu.RLock()
	defer m.node.fsm.mu.RUnlock()
	return m.node.fsm.st.Lookup(id)
}

// snapshotOf is the encoding of m's replicated state, for comparing members.
func snapshotOf(m *testMember) []byte {
	m.node.fsm.mu.RLock()
	defer m.node.fsm.mu.RUnlock()
	return m.node.fsm.st.Snapshot()
}

// submitted is a Submitted record of a small job.
func submitted(id string, payload []byte) store.Record {
	return store.Submitted(store.Spec{ID: id, Type: "echo", Payload: payload, MaxAttempts: 3, SubmittedAt: time.Unix(1, 0)})
}

// lifecycle applies a job's whole life through st, in one call: submitted, attempt
// started, resolved.
func lifecycle(t testing.TB, st store.Store, id string, payload []byte) {
	t.Helper()
	out := store.Outcome{Result: payload, Worker: "w1", Attempt: 1}
	err := st.Apply(context.Background(), submitted(id, payload), store.AttemptStarted(id, 1, "w1"),
		store.Resolved(id, out, time.Unix(2, 0)))
	if err != nil {
		t.Fatal(err)
	}
}

// lifecycles applies the lives of jobs "<prefix><i>" through the leader's store, on
// the next leader's if the leadership moves meanwhile (two busy cores can delay a
// heartbeat past the lease): a call that failed then is applied again, and found
// applied if it had been.
func (c *testCluster) lifecycles(prefix string, n int, payload []byte) {
	c.t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		out := store.Outcome{Result: payload, Worker: "w1", Attempt: 1}
		for try := 0; ; try++ {
			lead := c.leader()
			changed := lead.node.Changed()
			lead.node.mu.Lock()
			st := lead.node.role.st
			lead.node.mu.Unlock()
			if st == nil {
				continue // it stepped down between the two looks
			}
			err := st.Apply(context.Background(), submitted(id, payload), store.AttemptStarted(id, 1, "w1"),
				store.Resolved(id, out, time.Unix(2, 0)))
			if err == nil || (try > 0 && errors.Is(err, store.ErrDuplicateJob)) {
				break
			}
			if !errors.Is(err, ErrNotLeader) || try == 5 {
				c.t.Fatalf("apply %s: %v", id, err)
			}
			c.t.Logf("apply %s: %v; again on the next leader", id, err)
			select {
			case <-changed:
			case <-time.After(testWait):
				c.t.Fatalf("%s lost its leadership but did not change its role", lead.cfg.ID)
			}
		}
	}
}
