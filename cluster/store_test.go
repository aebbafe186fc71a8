package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/store"
)

// The leader's records reach every member's state machine, which end up equal.
func TestStoreReplicates(t *testing.T) {
	leakcheck.Check(t)
	c := newTestCluster(t, 3, nil)
	st := c.leaderStore()
	for i := range 20 {
		lifecycle(t, st, fmt.Sprintf("job-%d", i), bytes.Repeat([]byte{byte(i)}, 100))
	}
	// A payload at the blob threshold is held once, as a blob, by every member.
	big := bytes.Repeat([]byte("x"), store.DefaultBlobThreshold)
	if err := st.Apply(context.Background(), submitted("big", big)); err != nil {
		t.Fatal(err)
	}
	want := snapshotOf(c.leader())
	for _, m := range c.members {
		c.caughtUp(m)
		if got := snapshotOf(m); !bytes.Equal(got, want) {
			t.Errorf("%s's state differs from the leader's", m.cfg.ID)
		}
		js := lookup(m, "big")
		if js.Phase != store.PhaseQueued || js.Spec.PayloadRef != store.BlobHash(big) || js.Spec.Payload != nil {
			t.Errorf("%s holds the big job as %+v, want a queued job referring to its blob", m.cfg.ID, js.Phase)
		}
		if js := lookup(m, "job-7"); js.Phase != store.PhaseResolved || js.Outcome.Attempt != 1 {
			t.Errorf("%s holds job-7 as %v, want resolved", m.cfg.ID, js.Phase)
		}
	}
	s := st.Stats()
	if s.Jobs != 21 || s.Resolved != 20 || s.Queued != 1 || s.Blobs != 1 || s.Commits == 0 {
		t.Errorf("stats %+v", s)
	}
}

// Concurrent callers share entries (group commit), and a call the state machine
// refuses fails alone: the others of its entry are applied.
func TestStoreGroupCommit(t *testing.T) {
	leakcheck.Check(t)
	c := newTestCluster(t, 3, nil)
	st := c.leaderStore()
	const callers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var inner sync.WaitGroup
			for i := range each {
				inner.Add(1)
				id := fmt.Sprintf("g%d-%d", g, i)
				if err := st.ApplyThen(func(err error) { errs <- err; inner.Done() }, submitted(id, []byte("p"))); err != nil {
					t.Error(err)
					inner.Done()
				}
			}
			inner.Wait()
		}()
	}
	// A refused call among them: an attempt for a job nobody submitted.
	bad := make(chan error, 1)
	if err := st.ApplyThen(func(err error) { bad <- err }, store.AttemptStarted("nobody", 1, "w")); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a valid call failed: %v", err)
		}
	}
	if err := <-bad; !errors.Is(err, store.ErrUnknownJob) {
		t.Errorf("the refused call got %v, want ErrUnknownJob", err)
	}
	s := st.Stats()
	if s.Jobs != callers*each {
		t.Errorf("%d jobs held, want %d", s.Jobs, callers*each)
	}
	if s.Commits >= callers*each || s.MaxBatch < 2 {
		t.Errorf("%d entries for %d calls (largest %d records): no group commit", s.Commits, callers*each, s.MaxBatch)
	}
}

// A follower that missed entries while stopped catches up when it starts again, from
// the leader's snapshot and the log after it; a member restarted after taking its own
// snapshot restores from it and replays the rest of its log.
func TestStoreFollowerCatchesUp(t *testing.T) {
	leakcheck.Check(t)
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold, cfg.TrailingLogs = 8, 4
	})
	lead := c.leader()
	var follower *testMember
	for _, m := range c.members {
		if m != lead {
			follower = m
			break
		}
	}
	c.lifecycles("before", 1, []byte("b"))
	c.caughtUp(follower)
	c.stop(follower)

	c.lifecycles("while-away-", 40, []byte("w"))
	lead = c.leader()
	// Snapshot and compact the leader's log, so the follower cannot catch up from the
	// log alone.
	if err := lead.node.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	c.lifecycles("after-snapshot-", 10, []byte("a"))
	first, err := lead.node.logs.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= 2 {
		t.Fatalf("the leader's log starts at %d: it was not compacted, so this tests nothing", first)
	}

	c.start(follower)
	c.caughtUp(follower)
	c.converged()
	if js := lookup(follower, "while-away-39"); js.Phase != store.PhaseResolved {
		t.Errorf("while-away-39 is %v on the restarted follower", js.Phase)
	}

	// Restart it once more: now it has a snapshot of its own and a log after it.
	if err := follower.node.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	c.lifecycles("last", 1, []byte("l"))
	c.caughtUp(follower)
	c.stop(follower)
	c.start(follower)
	c.converged()
}

// A store whose leadership has ended refuses records with ErrNotLeader, and the state
// is unchanged by them.
func TestStoreRefusesAfterLeadership(t *testing.T) {
	leakcheck.Check(t)
	c := newTestCluster(t, 3, nil)
	st := c.leaderStore()
	// Resolved now, not at lifecycle's fixed time in 1970: the next leader's master
	// forgets outcomes older than its retention as soon as it opens.
	err := st.Apply(context.Background(), submitted("one", nil), store.AttemptStarted("one", 1, "w1"),
		store.Resolved("one", store.Outcome{Worker: "w1", Attempt: 1}, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	lead := c.leader()
	c.stop(lead)
	err = st.Apply(context.Background(), submitted("late", nil))
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Apply after the leadership ended: %v, want ErrNotLeader", err)
	}
	if err := st.ApplyThen(nil, submitted("late2", nil)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("ApplyThen after the leadership ended: %v, want ErrNotLeader", err)
	}
	next := c.leader()
	// A new leader applies what the old one committed only once it commits an entry
	// of its own term: the barrier is that entry (a Node opens its master after one).
	if err := next.node.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if js := lookup(next, "late"); js.Phase != store.PhaseUnknown {
		t.Errorf("the new leader holds the refused job: %v", js.Phase)
	}
	if js := lookup(next, "one"); js.Phase != store.PhaseResolved {
		t.Errorf("the new leader lost a committed job: %v", js.Phase)
	}
}
