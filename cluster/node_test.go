package cluster

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/store"
)

// Three members form a cluster; the leader's master dispatches remote callers' jobs to
// its workers, and every member's state machine holds the same outcomes.
func TestClusterDispatches(t *testing.T) {
	leakcheck.Check(t)
	c := newTestCluster(t, 3, withTestServers)
	lead := c.leader()
	cnt := newCounter(false)
	for range 2 {
		startWorker(t, lead.node.BanioAddr(), cnt.handle)
	}
	waitWorkers(t, lead.node.Master(), 2)
	cl := newClient(t, lead.node.BanioAddr())
	tks := submitDoubles(t, cl, "job-", 200)
	checkDoubles(t, tks)
	if tw := cnt.twice(); len(tw) > 0 {
		t.Fatalf("jobs ran twice: %v", tw)
	}
	c.converged()
	for _, m := range c.members {
		js := lookup(m, "job-99")
		if js.Phase != store.PhaseResolved && js.Phase != store.PhaseUnknown {
			t.Errorf("%s holds job-99 as %v after it resolved", m.cfg.ID, js.Phase)
		}
	}
}

// A member cut off from the others (here: the other two stopped) cannot accept jobs:
// its leadership ends within the lease, its master closes, and a submission to it
// fails instead of being acknowledged.
func TestMinorityAcceptsNoJobs(t *testing.T) {
	leakcheck.Check(t)
	c := newTestCluster(t, 3, withTestServers)
	lead := c.leader()
	m := lead.node.Master()
	changed := lead.node.Changed()
	for _, o := range c.members {
		if o != lead {
			c.stop(o)
		}
	}
	// Submitted now, the job's record cannot reach a quorum: Submit fails, or (when
	// the master closes while the record waits) its Ticket fails with ErrClosed.
	tk, err := m.Submit(context.Background(), dispatch.Job{ID: "alone", Type: "double", Payload: "1"})
	if err == nil {
		if res, werr := tk.Wait(waitCtx(t)); werr == nil {
			t.Fatalf("a member without a quorum accepted a job, which resolved with %q", res)
		}
	}
	select {
	case <-changed:
	case <-waitCtx(t).Done():
		t.Fatal("the cut-off leader did not step down")
	}
	if lead.node.Master() != nil {
		t.Fatal("the cut-off member still runs a master")
	}
	if js := lookup(lead, "alone"); js.Phase != store.PhaseUnknown {
		t.Fatalf("the refused job is in the state machine: %v", js.Phase)
	}
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	return ctx
}

// A leader whose replicated store fails while raft still says it leads (raft refused
// an entry for a reason other than a lost leadership) does not sit on a store that
// takes nothing: it restarts its master on a new store (or hands the leadership over),
// and the jobs submitted meanwhile, whose records never committed, are resubmitted by
// their Client and run once.
func TestLeaderRestartsOnStoreFailure(t *testing.T) {
	leakcheck.Check(t)
	c := newTestCluster(t, 3, withTestServers)
	lead := c.leader()
	cnt := newCounter(false)
	addrs := c.addrs()
	startWorker(t, addrs, cnt.handle)
	waitWorkers(t, lead.node.Master(), 1)
	cl := newClient(t, addrs)
	checkDoubles(t, submitDoubles(t, cl, "before-", 20))

	old := lead.node.Master()
	changed := lead.node.Changed()
	// Jobs keep coming while the store fails and the leadership restarts: some are
	// submitted before the failure, some fail to commit, some reach a master whose
	// store has failed, and some the restarted one.
	var tks []*dispatch.Ticket
	submitting := make(chan struct{})
	go func() {
		defer close(submitting)
		for i := 0; i < 2000; i++ {
			select {
			case <-changed:
				if i >= 50 {
					return
				}
			default:
			}
			tk, err := cl.Submit(context.Background(), dispatch.Job{ID: "after-" + strconv.Itoa(i), Type: "double", Payload: strconv.Itoa(i)})
			if err != nil {
				t.Errorf("submit %d: %v", i, err)
				return
			}
			tks = append(tks, tk)
		}
	}()
	c.leaderStore().fail(errors.New("injected: raft refused the entry"))
	select {
	case <-changed:
	case <-waitCtx(t).Done():
		t.Fatal("the leader kept its failed store")
	}
	<-submitting
	checkDoubles(t, tks)
	if now := c.leader().node.Master(); now == old {
		t.Fatal("the master on the failed store still leads")
	}
	if tw := cnt.twice(); len(tw) > 0 {
		t.Fatalf("jobs ran twice: %v", tw)
	}
}
