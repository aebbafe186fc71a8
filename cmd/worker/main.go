// Command worker is banfleet's generic worker daemon: it connects to a master and
// runs the job types "echo" (returns its payload) and "sleep" (payload: a duration
// such as "250ms"), which are enough to try routing, timeouts, cancellation and
// drains. A worker for your own job types is built the same way, with package
// daemon/workerd (docs/guide.md); the backtest example's worker is
// examples/backtest/cmd/btworker.
//
//	go run ./cmd/worker -master host:6789 -token "$TOKEN"
//
// Every flag can also be set by a BANFLEET_* environment variable (-drain-grace
// by BANFLEET_DRAIN_GRACE, say); a flag wins over the environment. It keeps
// trying to reach the master until it does, and reconnects after losing it. On
// SIGINT or SIGTERM it drains: it takes no new jobs, lets running ones finish
// within -drain-grace, and hands the rest back to the master.
// docs/operations.md describes flags, security and tracing.
package main

import "github.com/banfleet/banfleet/daemon/workerd"

func main() { newDaemon().Main() }

// newDaemon is cmd/worker: the kit with the generic job types.
func newDaemon() *workerd.Daemon {
	d := workerd.New("worker")
	d.Handle("echo", echo)
	d.Handle("sleep", sleep)
	return d
}
