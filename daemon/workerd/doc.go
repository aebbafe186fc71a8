// Package workerd builds worker daemons: a program that registers its job handlers
// here gets exactly cmd/worker's command line and behaviour, which cmd/worker itself
// is built with. That is every flag and its BANFLEET_* environment variable
// (-master, -token, -aes-key, -tls*, -concurrency, -labels, -name, -id, -drain-grace,
// -blob-cache, -http, -heartbeat*, -log-*, -trace, -otlp-*), /metrics and /healthz,
// OpenTelemetry tracing, and a drain on SIGINT or SIGTERM: no new jobs, running ones
// finish within -drain-grace, the rest go back to the master.
//
// A whole worker binary:
//
//	package main
//
//	import (
//		"context"
//
//		"github.com/banfleet/banfleet/daemon/workerd"
//		"github.com/banfleet/banfleet/worker"
//	)
//
//	func main() {
//		d := workerd.New("myworker")
//		d.Handle("greet", func(ctx context.Context, job *worker.Job) (any, error) {
//			return "hello, " + string(job.Payload), nil
//		})
//		d.Main()
//	}
//
// The package links no master code (it imports neither dispatch nor
// daemon/masterd), so a worker binary stays small; docs/guide.md walks through
// writing, running and testing one.
package workerd
