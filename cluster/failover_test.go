package cluster

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
)

// addrs is every member's banio address, comma-separated: what workers and clients
// of a cluster are given.
func (c *testCluster) addrs() string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.cfg.BanioAddr)
	}
	return strings.Join(out, ",")
}

// awaitStarted waits until n more jobs have started on the workers.
func awaitStarted(t *testing.T, cnt *counter, n int) {
	t.Helper()
	for range n {
		recvID(t, cnt.started, "jobs starting")
	}
}

// checkAll waits for every ticket (bounded by d) and checks its result.
func checkAll(t *testing.T, tks []*dispatch.Ticket, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for i, tk := range tks {
		res, err := tk.Wait(ctx)
		if err != nil || string(res) != strconv.Itoa(2*i) {
			t.Fatalf("job %s: %q, %v; want %d", tk.ID(), res, err, 2*i)
		}
	}
}

// The leader is killed (closed in process: its master, every connection, raft)
// while 10,000 jobs run on four workers that survive it. The workers and the Client,
// given every member's address, find the new leader; the workers re-register with
// the attempts they hold and the replies they lingered on, the Client re-attaches its
// tickets. Every ticket resolves once with its result, and no job runs twice.
func TestFailoverLeaderKilled(t *testing.T) {
	leakcheck.Check(t)
	const jobs = 10000
	c := newTestCluster(t, 3, withTestServers)
	cnt := newCounter(false)
	addrs := c.addrs()
	for range 4 {
		startWorker(t, addrs, cnt.handle)
	}
	old := c.leader()
	waitWorkers(t, old.node.Master(), 4)
	cl := newClient(t, addrs)
	tks := submitDoubles(t, cl, "f-", jobs)
	awaitStarted(t, cnt, jobs/5)
	killed := time.Now()
	c.stop(old)
	lead := c.leader()
	t.Logf("leader %s killed; %s leads after %v", old.cfg.ID, lead.cfg.ID, time.Since(killed).Round(time.Millisecond))
	checkAll(t, tks, 90*time.Second)
	if tw := cnt.twice(); len(tw) > 0 {
		t.Fatalf("%d jobs ran more than once: %v", len(tw), tw[:min(len(tw), 10)])
	}
}

// A follower is killed while jobs run, and the cluster goes on with two; it starts
// again and catches up; then the leader is killed. Every ticket resolves once with its
// result, and no job runs twice.
func TestFailoverFollowerThenLeader(t *testing.T) {
	leakcheck.Check(t)
	const batch = 1000
	c := newTestCluster(t, 3, withTestServers)
	cnt := newCounter(false)
	addrs := c.addrs()
	for range 2 {
		startWorker(t, addrs, cnt.handle)
	}
	lead := c.leader()
	waitWorkers(t, lead.node.Master(), 2)
	cl := newClient(t, addrs)

	var follower *testMember
	for _, m := range c.members {
		if m != lead {
			follower = m
			break
		}
	}
	tks := submitDoubles(t, cl, "a-", batch)
	awaitStarted(t, cnt, batch/4)
	c.stop(follower)
	checkAll(t, tks, 60*time.Second)

	c.start(follower)
	tks = submitDoubles(t, cl, "b-", batch)
	c.caughtUp(follower)
	awaitStarted(t, cnt, batch/4)
	c.stop(lead)
	checkAll(t, tks, 60*time.Second)
	if next := c.leader(); next == lead {
		t.Fatal("the killed member leads")
	}
	if tw := cnt.twice(); len(tw) > 0 {
		t.Fatalf("%d jobs ran more than once: %v", len(tw), tw[:min(len(tw), 10)])
	}
}
