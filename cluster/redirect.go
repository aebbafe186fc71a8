package cluster

import "github.com/banfleet/banfleet/banio"

// A follower's banio server answers every hello with a welcome whose code is
// not_leader and whose leader field is where the leader serves (banio's
// ServerIO.SetNotLeader); workers and clients given every master's address
// ("a,b,c") follow it. A leader's server is a new one, which serves.

// notLeader makes srv answer every new connection with leader ("" when unknown).
func notLeader(srv *banio.ServerIO, leader string) { srv.SetNotLeader(leader) }
