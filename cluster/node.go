package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.opentelemetry.io/otel"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/store"
)

// Node is one member of a cluster of masters: it owns raft (its log, stable store and
// snapshots in Config.DataDir, its TCP transport), the state machine the log is
// applied to, the banio listener, and, while it leads, the master.
//
// Roles. A follower applies the log and answers every banio hello with where the
// leader is. When raft makes the node leader, it waits for its state machine to apply
// everything committed before (raft.Barrier), announces its banio address in the log,
// and opens a dispatch.Master on a store whose records are raft entries of its term
// (dispatch.OpenMaster: the queues, orphaned attempts and held outcomes come back as
// after a restart). When the leadership ends, the node closes that master and every
// connection; workers and callers find the new leader and re-register and re-attach
// there. One goroutine (run) makes every role change, in the order raft reports them.
type Node struct {
	cfg     Config
	log     *slog.Logger
	fsm     *fsm
	raft    *raft.Raft
	trans   *raft.NetworkTransport
	logs    *raftboltdb.BoltStore
	metrics *metrics

	notify chan bool             // raft's leadership changes (Config.NotifyCh)
	obs    chan raft.Observation // raft's leader observations
	obsr   *raft.Observer
	conns  chan net.Conn // the accept loop's hand-over
	done   chan struct{}
	// raftDown is closed once raft.Shutdown has returned: a leader's store stops
	// waiting for the futures raft will never answer (abandon.go).
	raftDown chan struct{}
	wg       sync.WaitGroup
	once     sync.Once

	// mu protects the following fields.
	mu      sync.Mutex
	role    *role
	changed chan struct{} // closed and replaced at every role change
}

// role is the node's current part: a leadership (master and st set) or a follower
// spell. Only the run goroutine makes and closes roles.
type role struct {
	srv    *banio.ServerIO
	ln     *handoff
	served chan struct{}
	leader string // a follower's redirect

	master  *dispatch.Master
	st      *termStore
	term    uint64
	started time.Time // when the leadership's master opened
}

// Open starts a member: raft from what DataDir holds (bootstrapping Config.Peers on a
// first start), and serving Config.Listener, as a follower until raft says otherwise.
func Open(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: data dir: %w", err)
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger.With("node", cfg.ID), fsm: newFSM(),
		notify: make(chan bool, 16), obs: make(chan raft.Observation, 16),
		conns: make(chan net.Conn), done: make(chan struct{}), raftDown: make(chan struct{}), changed: make(chan struct{}),
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	n.metrics = newMetrics(mp)
	if err := n.openRaft(); err != nil {
		n.metrics.close()
		return nil, err
	}
	n.setRole(n.followerRole())
	n.wg.Add(2)
	go n.acceptLoop()
	go n.run()
	return n, nil
}

func (n *Node) openRaft() (err error) {
	cfg := n.cfg
	hlog := raftLogger(n.log)
	path := filepath.Join(cfg.DataDir, "raft.db")
	logs, err := raftboltdb.New(raftboltdb.Options{Path: path, NoSync: cfg.NoSync, BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("cluster: %s is locked by another process (another master on the same -data-dir?)", path)
		}
		return fmt.Errorf("cluster: open raft log %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = logs.Close()
		}
	}()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hlog)
	if err != nil {
		return fmt.Errorf("cluster: snapshot store in %s: %w", cfg.DataDir, err)
	}
	var trans *raft.NetworkTransport
	if cfg.StreamLayer != nil {
		trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: cfg.StreamLayer, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog})
	} else {
		var adv net.Addr
		if cfg.RaftAdvertise != "" {
			if adv, err = net.ResolveTCPAddr("tcp", cfg.RaftAdvertise); err != nil {
				return fmt.Errorf("cluster: raft advertise address %q: %w", cfg.RaftAdvertise, err)
			}
		}
		trans, err = raft.NewTCPTransportWithLogger(cfg.RaftBind, adv, 3, 10*time.Second, hlog)
		if err != nil {
			return fmt.Errorf("cluster: raft transport on %s: %w (give -raft-advertise when binding a wildcard address)", cfg.RaftBind, err)
		}
	}
	defer func() {
		if err != nil {
			_ = trans.Close()
		}
	}()

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hlog
	rc.HeartbeatTimeout, rc.ElectionTimeout = cfg.HeartbeatTimeout, cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotInterval, rc.SnapshotThreshold, rc.TrailingLogs = cfg.SnapshotInterval, cfg.SnapshotThreshold, cfg.TrailingLogs
	// Not BatchApplyCh: with it, raft.Apply queues into a buffered channel, and an
	// entry still in that buffer when raft shuts down is never answered (a closing
	// leadership's store would wait for it for ever). The leader loop gathers what
	// is ready into one log write either way.
	rc.BatchApplyCh = false
	rc.NotifyCh = n.notify
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("cluster: raft configuration: %w", err)
	}
	hasState, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return fmt.Errorf("cluster: read raft state in %s: %w", cfg.DataDir, err)
	}
	r, err := raft.NewRaft(rc, n.fsm, logs, logs, snaps, trans)
	if err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft, n.trans, n.logs = r, trans, logs
	n.obsr = raft.NewObserver(n.obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(n.obsr)
	if !hasState && len(cfg.Peers) > 0 {
		if err := n.Bootstrap(cfg.Peers); err != nil {
			_ = r.Shutdown().Error()
			return err
		}
	}
	return nil
}

// Bootstrap makes a new cluster of peers (this member among them) on a member with no
// raft state; a member that has some (it was bootstrapped, or added, before) ignores
// it. Config.Peers does this at Open; tests whose members pick their ports at Open
// call it once they know every address. This member's own entry may give port 0: its
// raft address is the one its transport listens on (a cluster founded by one member
// that the others then join).
func (n *Node) Bootstrap(peers []Peer) error {
	var conf raft.Configuration
	for _, p := range peers {
		addr := p.RaftAddr
		if _, port, _ := net.SplitHostPort(addr); p.ID == n.cfg.ID && port == "0" {
			addr = n.RaftAddr()
		}
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(addr)})
	}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("cluster: bootstrap: %w", err)
	}
	return nil
}

// RaftAddr is the address the other members reach this one's raft at.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// BanioAddr is the address this member serves workers and callers on.
func (n *Node) BanioAddr() string { return n.cfg.BanioAddr }

// ID is this member's id.
func (n *Node) ID() string { return n.cfg.ID }

// Master returns the master while this member leads, else nil. A master returned
// here is closed when the leadership ends: jobs submitted to it in process then fail
// with dispatch.ErrClosed (those it accepted are in the replicated store, and the
// next leader runs them).
func (n *Node) Master() *dispatch.Master {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.role.master
}

// StoreStats reports what the store of the current leadership committed (its Stats),
// and false when this member does not lead.
func (n *Node) StoreStats() (store.Stats, bool) {
	n.mu.Lock()
	st := n.role.st
	n.mu.Unlock()
	if st == nil {
		return store.Stats{}, false
	}
	return st.Stats(), true
}

// Changed returns a channel closed at the node's next role change (it became leader,
// or stopped being it, or the leader it redirects to changed).
func (n *Node) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}

func (n *Node) setRole(r *role) {
	n.mu.Lock()
	n.role = r
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

// run makes the role changes raft reports, one at a time, until Close.
func (n *Node) run() {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		var broke <-chan struct{} // nil (never ready) unless this member leads
		if st := n.role.st; st != nil {
			broke = st.broke
		}
		n.mu.Unlock()
		select {
		case <-broke:
			n.restartLeadership()
		case <-n.done:
			n.mu.Lock()
			r := n.role
			n.mu.Unlock()
			n.closeRole(r)
			return
		case leader := <-n.notify:
			n.mu.Lock()
			cur := n.role
			n.mu.Unlock()
			switch {
			case leader && cur.master == nil:
				n.closeRole(cur)
				n.setRole(n.leaderRole())
			case !leader && cur.master != nil:
				n.log.Info("cluster: lost the leadership; closing the master", "term", cur.term)
				n.closeRole(cur)
				n.setRole(n.followerRole())
			}
		case <-n.obs:
			n.metrics.leaderChanged()
			n.redirect()
		case <-n.fsm.changed:
			n.redirect()
		}
	}
}

// restartLeadership ends a leadership whose store failed. A proposal refused because
// the leadership was lost (or is being handed over) ends it as raft's notification
// would, a little sooner; if raft still says this member leads afterwards (a transfer
// that did not happen), it leads again on a new store. A proposal that raft refused
// for any other reason (its log store failed a write, an entry was refused) fails the
// term's store for good while raft still says this member leads: the
// master could accept nothing more, and the remote callers of the jobs whose records
// did not commit would wait for an answer that never comes, since their connections
// stay up. So the role ends as on a lost leadership (connections closed: workers
// re-register and callers re-attach, then resubmit what the log lacks), and a new
// master opens on a new term store, after a Barrier, if this member still leads. A
// store that fails again within restartPause of its start hands the leadership to
// another member instead, if there is one, rather than failing in a loop.
func (n *Node) restartLeadership() {
	n.mu.Lock()
	cur := n.role
	n.mu.Unlock()
	err := cur.st.failure()
	fenced := errors.Is(err, store.ErrFenced) // raft said the leadership is over
	if fenced {
		n.log.Info("cluster: the leadership ended while proposing; closing the master", "term", cur.term, "err", err)
	} else {
		n.log.Warn("cluster: the replicated store failed while leading; restarting the master on a new store", "term", cur.term, "err", err)
		n.metrics.storeRestarted()
	}
	n.closeRole(cur)
	if !fenced && time.Since(cur.started) < restartPause {
		_ = n.raft.LeadershipTransfer().Error()
	}
	// Still the leader (a transfer that did not happen, a refusal that was not a lost
	// leadership): lead again on a new store, else follow. raft's notifications that
	// follow find the role they describe and change nothing.
	if n.raft.State() != raft.Leader {
		n.setRole(n.followerRole())
		return
	}
	n.setRole(n.leaderRole())
}

// restartPause: a leadership whose store fails sooner than this after it started
// hands the leadership over instead of restarting in place.
const restartPause = time.Second

// redirect points a follower's server at the current leader.
func (n *Node) redirect() {
	n.mu.Lock()
	r := n.role
	n.mu.Unlock()
	if r.master != nil {
		return
	}
	if addr := n.leaderBanio(); addr != r.leader {
		r.leader = addr
		notLeader(r.srv, addr)
		n.setRole(r)
	}
}

// leaderBanio is where the leader serves, as it announced it; "" if unknown.
func (n *Node) leaderBanio() string {
	_, id := n.raft.LeaderWithID()
	switch {
	case id == "":
		return ""
	case string(id) == n.cfg.ID:
		return n.cfg.BanioAddr
	}
	return n.fsm.addr(string(id))
}

// followerRole starts a follower spell: a server that redirects to the leader.
func (n *Node) followerRole() *role {
	r := &role{srv: n.cfg.NewServer(), leader: n.leaderBanio()}
	notLeader(r.srv, r.leader)
	n.serve(r)
	return r
}

// leaderRole starts a leadership: once the state machine is current, a master on
// this term's store. If the leadership ends meanwhile, it is a follower spell, and the
// notification that follows is no change.
func (n *Node) leaderRole() *role {
	term := n.raft.CurrentTerm()
	timeout := 4 * n.cfg.ElectionTimeout
	err := n.raft.Barrier(timeout).Error()
	if err == nil {
		err = n.raft.Apply(appendAnnounce(nil, term, n.cfg.ID, n.cfg.BanioAddr), timeout).Error()
	}
	if err != nil {
		n.log.Warn("cluster: elected, but could not bring the state up to date; staying a follower", "term", term, "err", err)
		return n.followerRole()
	}
	st := newTermStore(n.raft, n.raftDown, n.fsm, term, storeOptions{
		blobThreshold: n.cfg.BlobThreshold, retention: n.cfg.Retention,
		maxDelay: time.Millisecond, maxEntryBytes: 4 << 20, maxInflight: maxInflight, applyTimeout: timeout,
	}, n.metrics)
	r := &role{srv: n.cfg.NewServer(), st: st, term: term, started: time.Now()}
	// A leader cut off from the others still gets its workers' replies for a moment:
	// their outcomes reach callers only once committed, so a late one resolves
	// nothing (dispatch.WithOutcomesAfterCommit), unless Config.EarlyOutcomes.
	opts := append([]dispatch.Option(nil), n.cfg.MasterOptions...)
	if !n.cfg.EarlyOutcomes {
		opts = append(opts, dispatch.WithOutcomesAfterCommit())
	}
	m, err := dispatch.OpenMaster(r.srv, st, opts...)
	if err != nil {
		n.log.Error("cluster: elected, but the master could not open on the replicated state; stepping down", "term", term, "err", err)
		_ = st.Close()
		_ = n.raft.LeadershipTransfer()
		return n.followerRole()
	}
	r.master = m
	n.metrics.leader.Store(true)
	n.serve(r)
	n.log.Info("cluster: leading; master open", "term", term, "addr", n.cfg.BanioAddr)
	return r
}

// serve starts r's server on a hand-off of the node's listener.
func (n *Node) serve(r *role) {
	r.ln = newHandoff(n.conns, n.cfg.Listener.Addr())
	r.served = make(chan struct{})
	go func() {
		defer close(r.served)
		if err := r.srv.Serve(r.ln); err != nil && !errors.Is(err, banio.ErrServerClosed) {
			n.log.Warn("cluster: banio server stopped", "err", err)
		}
	}()
}

// closeRole ends r. A leadership's store is fenced first, so that nothing the master
// does from then on reaches the log; then its server closes every connection (workers
// keep their jobs running and hold their replies, remote callers keep their tickets:
// they re-register and re-attach to the next leader, which finds those jobs as the
// log left them); then the master closes, and the store once what it proposed is
// answered. Closing the master while its workers were still connected would cancel
// their running jobs.
func (n *Node) closeRole(r *role) {
	if r.st != nil {
		r.st.fence()
	}
	_ = r.ln.Close()
	_ = r.srv.Close()
	<-r.served
	if r.master != nil {
		_ = r.master.Close()
		n.metrics.leader.Store(false)
	}
	if r.st != nil {
		_ = r.st.Close()
	}
}

// Close stops the member: raft (a leader's followers elect another meanwhile), the
// master and every connection, the transport and the log store. The replicated state
// stays in DataDir for the next Open.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		// raft first, so that the others start electing a new leader while this
		// member closes its master; its store is fenced before, so that nothing the
		// master does while it closes is proposed.
		n.mu.Lock()
		if st := n.role.st; st != nil {
			st.fence()
		}
		n.mu.Unlock()
		n.raft.DeregisterObserver(n.obsr)
		err = n.raft.Shutdown().Error()
		close(n.raftDown) // the futures raft will never answer now fail (abandon.go)
		close(n.done)
		_ = n.cfg.Listener.Close()
		n.wg.Wait()
		// The transport's Close stops its listener only: the connections it pooled to
		// the other members are closed here, or their handlers would wait on them.
		n.trans.CloseStreams()
		if cerr := n.trans.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if cerr := n.logs.Close(); cerr != nil && err == nil {
			err = cerr
		}
		n.metrics.close()
	})
	return err
}
