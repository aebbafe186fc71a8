// Package masterd builds master daemons: cmd/master is built with it, and a
// program of your own gets the same command line and behaviour plus its own HTTP
// routes and dispatch options. That is every flag and its BANFLEET_* environment
// variable (-listen, -http, -token, -aes-key, -tls*, -data-dir, -in-memory, the
// queue and blob limits, -heartbeat*, -log-*, -trace, -otlp-*), the durable job store,
// /healthz and /metrics, OpenTelemetry tracing, and an orderly shutdown on SIGINT or
// SIGTERM.
//
// A master with one extra route:
//
//	package main
//
//	import (
//		"encoding/json"
//		"net/http"
//
//		"github.com/banfleet/banfleet/daemon/masterd"
//	)
//
//	func main() {
//		d := masterd.New("mymaster")
//		d.HandleHTTP("GET /workers", func(f *masterd.Fleet) http.Handler {
//			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
//				_ = json.NewEncoder(w).Encode(f.Master.Workers())
//			})
//		})
//		d.Main()
//	}
//
// It is separate from package daemon/workerd so that a worker binary links no
// master code; what both share is package daemon.
package masterd
