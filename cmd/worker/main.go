// Command worker is banfleet's worker daemon: it connects to a master and runs
// the built-in job types "backtest" (the backtest example's jobs), "echo"
// (returns its payload) and "sleep" (payload: a duration such as "250ms").
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

import (
	"os"

	"github.com/banfleet/banfleet/daemon"
)

func main() {
	ctx, stop := daemon.ShutdownContext()
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
