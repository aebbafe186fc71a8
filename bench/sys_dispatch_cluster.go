package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/cluster"
	"github.com/banfleet/banfleet/dispatch"
)

// clusterSystem is dispatch-cluster-w4: dispatch-w4 on a cluster of three masters
// (package cluster) in this process, on loopback: real raft over its TCP transport,
// raft-boltdb files fsynced as cmd/master -cluster runs. The leader's master
// dispatches; every job's records are committed by a quorum (the leader and one
// follower) before the job is accepted and before its attempt leaves. The workers
// and the client connect to the leader.
type clusterSystem struct {
	workers int
	early   bool // dispatch-cluster-w4-early: cluster.Config.EarlyOutcomes

	dir     string
	members []*cluster.Node
	leader  *cluster.Node
	pool    *echoWorkers
	client  *dispatch.Client
}

func newClusterDispatch(workers int, early bool) *clusterSystem {
	return &clusterSystem{workers: workers, early: early}
}

// Loopback timings of the bench's clusters: elections within a second, yet not so
// eager that a busy core makes leaders flap during a window.
const (
	benchHeartbeat = 500 * time.Millisecond
	benchLease     = 500 * time.Millisecond
)

// startCluster opens n members in dir and returns them and the leader.
func startCluster(ctx context.Context, dir string, n int, early bool) ([]*cluster.Node, *cluster.Node, error) {
	var members []*cluster.Node
	var peers []cluster.Peer
	fail := func(err error) ([]*cluster.Node, *cluster.Node, error) {
		for _, m := range members {
			_ = m.Close()
		}
		return nil, nil, err
	}
	for i := range n {
		ln, err := net.Listen("tcp", loopback)
		if err != nil {
			return fail(err)
		}
		id := fmt.Sprintf("m%d", i+1)
		node, err := cluster.Open(cluster.Config{
			ID: id, RaftBind: loopback, DataDir: fmt.Sprintf("%s/%s", dir, id), Listener: ln,
			EarlyOutcomes: early, HeartbeatTimeout: benchHeartbeat, ElectionTimeout: benchHeartbeat, LeaderLeaseTimeout: benchLease,
			NewServer: func() *banio.ServerIO { return banio.NewBanServer("", "bench-"+id) },
		})
		if err != nil {
			_ = ln.Close()
			return fail(err)
		}
		members = append(members, node)
		peers = append(peers, cluster.Peer{ID: id, RaftAddr: node.RaftAddr()})
	}
	if err := members[0].Bootstrap(peers); err != nil {
		return fail(err)
	}
	lead, err := awaitLeader(ctx, members, nil)
	if err != nil {
		return fail(err)
	}
	return members, lead, nil
}

// awaitLeader waits until a member other than not leads with its master open.
func awaitLeader(ctx context.Context, members []*cluster.Node, not *cluster.Node) (*cluster.Node, error) {
	for {
		changed := make([]<-chan struct{}, 0, len(members))
		for _, m := range members {
			if m == not {
				continue
			}
			changed = append(changed, m.Changed())
			if m.Master() != nil {
				return m, nil
			}
		}
		// Wake on any member's role change: at most three channels, so a select on
		// each in turn with a short bound is simpler than reflect.Select.
		select {
		case <-changed[0]:
		case <-changed[min(1, len(changed)-1)]:
		case <-changed[len(changed)-1]:
		case <-ctx.Done():
			return nil, fmt.Errorf("no leader: %w", ctx.Err())
		}
	}
}

// Start starts the cluster, the workers and the client.
func (d *clusterSystem) Start(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "bench-cluster-")
	if err != nil {
		return err
	}
	d.dir = dir
	if d.members, d.leader, err = startCluster(ctx, dir, 3, d.early); err != nil {
		return err
	}
	addr := d.leader.BanioAddr()
	d.pool = startEchoWorkers(addr, d.workers)
	if err := d.leader.Master().WaitWorkers(ctx, d.workers); err != nil {
		return err
	}
	client, err := dispatch.NewClient(addr)
	if err != nil {
		return fmt.Errorf("dispatch client: %w", err)
	}
	d.client = client
	return nil
}

// NewCaller returns a Caller on the shared client.
func (d *clusterSystem) NewCaller() (Caller, error) {
	if d.client == nil {
		return nil, errors.New("dispatch-cluster: not started")
	}
	return &dispatchCaller{client: d.client}, nil
}

// Close closes the client, the workers, then every member.
func (d *clusterSystem) Close() error {
	var errs []error
	if d.client != nil {
		errs = append(errs, d.client.Close())
	}
	errs = append(errs, d.pool.close()...)
	if d.leader != nil {
		if m := d.leader.Master(); m != nil {
			fmt.Fprintf(os.Stderr, "  cluster: leader %s resolved %d jobs\n", d.leader.ID(), m.Stats().Done)
			if s, ok := d.leader.StoreStats(); ok && s.Commits > 0 {
				fmt.Fprintf(os.Stderr, "  cluster store: %d records in %d raft entries (%.1f records/entry, max %d), %.2f ms from proposal to apply per entry\n",
					s.Records, s.Commits, s.MeanBatch, s.MaxBatch, float64(s.CommitTime.Microseconds())/1000/float64(s.Commits))
			}
		}
	}
	for _, m := range d.members {
		errs = append(errs, m.Close())
	}
	if d.dir != "" {
		errs = append(errs, os.RemoveAll(d.dir))
	}
	return errors.Join(errs...)
}

var _ System = (*clusterSystem)(nil)
