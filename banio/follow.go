package banio

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Following the leader, server side. Of a cluster of masters only the leader serves;
// each follower keeps its ServerIO listening so that a peer given every master's
// address finds the leader through any of them: SetNotLeader makes the server answer
// every new connection's hello, once the token is checked, with a welcome whose code is
// refuseNotLeader and which names the leader, and close it. A banbot peer never says
// hello: its first frame is answered the same way (it logs an unknown action and
// reconnects). Connections already open are left alone: whoever demotes the server
// closes what it served.

// refuseNotLeader in a welcome's "code" field: this server is a follower; its "leader"
// field says where the leader is ("" when unknown). The client dials the leader next
// (ErrNotLeader).
const refuseNotLeader = "not_leader"

// notLeaderWelcome is the welcome of a follower. Unlike the other welcome fields,
// "leader" is always present, "" when the follower does not know the leader.
type notLeaderWelcome struct {
	welcomeMsg
	Leader string `json:"leader"`
}

// SetNotLeader makes the server a follower: from now on every new connection is
// answered, after its hello has been authenticated, with a not_leader welcome naming
// leader (the leader's banio address as its peers dial it, "" if unknown), and closed.
// Connections already open are not touched. Calling it again updates the leader.
// Safe for concurrent use; the accept path pays one atomic load for it.
func (s *ServerIO) SetNotLeader(leader string) { s.notLeader.Store(&leader) }

// SetLeader undoes SetNotLeader: new connections are served again.
func (s *ServerIO) SetLeader() { s.notLeader.Store(nil) }

// Redirected counts connections answered with not_leader (SetNotLeader).
func (s *ServerIO) Redirected() uint64 { return s.redirected.Load() }

// leaderElsewhere reports whether the server is a follower, and the leader it names.
func (s *ServerIO) leaderElsewhere() (leader string, follower bool) {
	if p := s.notLeader.Load(); p != nil {
		return *p, true
	}
	return "", false
}

// refuseNotLeader answers c with where the leader is and closes it. It runs on c's
// read loop; c is left unauthenticated, so that frames buffered behind the hello are
// never handled.
func (c *BanConn) refuseNotLeader(leader string) error {
	s := c.server
	c.authed.Store(false)
	s.redirected.Add(1)
	s.refuseLog.log(s.log, slog.LevelInfo, "banio: not the leader, connection redirected", "remote", c.remote, "leader", leader)
	data, _ := json.Marshal(notLeaderWelcome{
		welcomeMsg: welcomeMsg{V: helloVersion, Error: "this server is not the leader", Code: refuseNotLeader},
		Leader:     leader,
	})
	_ = c.send(actionWelcome, data, nil, true, false, writeOneOff)
	err := &NotLeaderError{Leader: leader}
	c.closeWithError(err)
	return err
}

// NotLeaderError is a follower's refusal (ServerIO.SetNotLeader): the server at Addr is
// not the leader of its cluster; Leader is where the leader is, "" if the follower does
// not know (an election is under way). errors.Is(err, ErrNotLeader) and
// errors.Is(err, ErrRefused) hold for it.
type NotLeaderError struct {
	Addr   string // the server that refused ("" on the server side)
	Leader string // the leader's address as the follower gave it, "" if unknown
}

func (e *NotLeaderError) Error() string {
	who := "the server"
	if e.Addr != "" {
		who = e.Addr
	}
	if e.Leader == "" {
		return fmt.Sprintf("banio: %s is not the leader, and does not know which server is", who)
	}
	return fmt.Sprintf("banio: %s is not the leader; the leader is %s", who, e.Leader)
}

// Unwrap makes errors.Is(err, ErrNotLeader) hold (and, through it, ErrRefused).
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }
