package cluster

import "github.com/banfleet/banfleet/banio"

// A follower's banio server answers every hello with a welcome whose code is
// not_leader and whose leader field is where the leader serves (banio's
// ServerIO.SetNotLeader); workers and clients given every master's address follow it.

// notLeader makes srv answer every new connection with leader ("" when unknown).
func notLeader(srv *banio.ServerIO, leader string) {
	// Until banio's SetNotLeader lands, a server without it serves nothing at all
	// (no master is installed on a follower's server).
	if s, ok := any(srv).(interface{ SetNotLeader(string) }); ok {
		s.SetNotLeader(leader)
	}
}
