// Command master is banfleet's master daemon: it accepts workers and remote
// callers on a banio port, routes their jobs (package dispatch), and serves a
// status page and JSON over HTTP.
//
//	go run ./cmd/master -listen 0.0.0.0:6789 -token "$TOKEN"
//
// Every flag can also be set by a BANFLEET_* environment variable (-job-timeout
// by BANFLEET_JOB_TIMEOUT, say); a flag wins over the environment. On SIGINT or
// SIGTERM it stops the status server, fails the jobs still unresolved, and closes
// every connection. docs/operations.md describes flags, security, tracing and the
// status page.
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
