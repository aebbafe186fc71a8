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
// status page. It is built with package daemon/masterd, as a master of your own
// can be.
package main

import (
	"net/http"
	"time"

	"github.com/banfleet/banfleet/daemon/masterd"
)

func main() { newDaemon().Main() }

// newDaemon is cmd/master: the kit with the status page (/, /status) on -http.
func newDaemon() *masterd.Daemon {
	d := masterd.New("master")
	d.HandleHTTP("/", func(f *masterd.Fleet) http.Handler {
		var status *statusServer
		if f.Node != nil {
			status = newStatusServer(nodeFleet{f.Node}, f.Addr, time.Now)
			status.cluster = func() any { st := f.Node.Status(); return &st }
		} else {
			status = newStatusServer(f.Master, f.Addr, time.Now)
		}
		status.metrics, status.pprof = f.Metrics, f.Config.Pprof
		return status.handler()
	})
	return d
}
