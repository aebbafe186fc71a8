package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Membership changes go through raft's configuration: AddVoter and RemoveServer on
// the leader, which commits the new configuration like any entry. A member added
// starts empty and catches up from the leader's snapshot and log; cmd/master exposes
// both on its status listener (docs/operations.md, "Running a cluster").

// ErrNotLeaderHere: a membership change asked of a member that does not lead. The
// error names the leader, where the change is to be asked.
var ErrNotLeaderHere = errors.New("cluster: membership changes are made on the leader")

// membershipTimeout bounds one membership change.
const membershipTimeout = 30 * time.Second

// AddVoter adds member id, whose raft listens at raftAddr, as a voter, and records
// banioAddr ("" if not known) as where it serves, for redirects once it leads. It must
// be asked of the leader; adding a member that is already one with that address does
// nothing.
func (n *Node) AddVoter(ctx context.Context, id, raftAddr, banioAddr string) error {
	if id == "" || raftAddr == "" {
		return errors.New("cluster: adding a member needs its id and raft address")
	}
	if err := n.leading(); err != nil {
		return err
	}
	if err := n.await(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, membershipTimeout)); err != nil {
		return err
	}
	if banioAddr != "" {
		term := n.raft.CurrentTerm()
		return n.await(ctx, n.raft.Apply(appendAnnounce(nil, term, id, banioAddr), membershipTimeout))
	}
	return nil
}

// RemoveServer removes member id from the cluster. It must be asked of the leader;
// the leader may remove itself, and the others then elect a new one.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("cluster: removing a member needs its id")
	}
	if err := n.leading(); err != nil {
		return err
	}
	return n.await(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, membershipTimeout))
}

func (n *Node) leading() error {
	if n.raft.State() == raft.Leader {
		return nil
	}
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return fmt.Errorf("%w: no leader is known now (is a quorum of members up?)", ErrNotLeaderHere)
	}
	return fmt.Errorf("%w: ask %s (raft %s)", ErrNotLeaderHere, id, addr)
}

// await waits for f or ctx.
func (n *Node) await(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("cluster: membership change: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: membership change: %w (it may still complete)", ctx.Err())
	}
}

// Status is what a member reports of the cluster (cmd/master's /status "cluster").
type Status struct {
	ID          string   `json:"id"`           // this member
	State       string   `json:"state"`        // Leader, Follower, Candidate or Shutdown
	Leader      string   `json:"leader"`       // the leader's id, "" when none is known
	LeaderAddr  string   `json:"leader_addr"`  // where the leader serves workers and callers (banio)
	Term        uint64   `json:"term"`         // raft's current term
	CommitIndex uint64   `json:"commit_index"` // the last log index known committed
	Applied     uint64   `json:"applied"`      // the last index applied to the state machine
	LastIndex   uint64   `json:"last_index"`   // the last index in this member's log
	Members     []Member `json:"members"`      // raft's configuration
}

// Member is one server of the cluster's configuration.
type Member struct {
	ID        string `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	BanioAddr string `json:"banio_addr"` // as it announced it when it last led; "" if never
	Voter     bool   `json:"voter"`
	Leader    bool   `json:"leader"`
}

// Status reports the member's view of the cluster.
func (n *Node) Status() Status {
	_, leader := n.raft.LeaderWithID()
	s := Status{
		ID: n.cfg.ID, State: n.raft.State().String(), Leader: string(leader), LeaderAddr: n.leaderBanio(),
		Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(), Applied: n.raft.AppliedIndex(),
		LastIndex: n.raft.LastIndex(), Members: []Member{},
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			id := string(srv.ID)
			addr := n.fsm.addr(id)
			if id == n.cfg.ID {
				addr = n.cfg.BanioAddr
			}
			s.Members = append(s.Members, Member{
				ID: id, RaftAddr: string(srv.Address), BanioAddr: addr,
				Voter: srv.Suffrage == raft.Voter, Leader: srv.ID == leader,
			})
		}
	}
	return s
}
