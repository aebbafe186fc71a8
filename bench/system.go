package main

import (
	"context"
	"time"
)

// This file is the whole contract between the harness and a system under
// test. To add a system, write one file (sys_<name>.go) with a type that
// implements System, and add one Entry for it to the registry table in
// registry.go. Nothing else in the harness needs to change: the table, the
// ratios and the JSON output pick the new rows up by name.

// Case is one point of the benchmark matrix.
type Case struct {
	// Callers is the number of concurrent closed-loop callers (goroutines),
	// each with its own Caller, each issuing its next call as soon as the
	// previous one returned.
	Callers int `json:"callers"`
	// Size is the payload size in bytes of every request (and so of every
	// echoed reply).
	Size int `json:"size"`
}

// System is one peer implementation under test: a server (or broker, or
// master plus workers) and the client side that talks to it, all inside this
// process and on loopback.
//
// The harness uses a fresh System (from Entry.New, which must only build
// the value and acquire nothing) for every repeat of every case, in this
// order, from a single goroutine:
//
//	sys := entry.New()
//	sys.Start(ctx)              // listeners on 127.0.0.1:0 only
//	c1, _ := sys.NewCaller()    // Case.Callers times, before any call
//	...                         // warm-up window, then the measured window
//	sys.Close()                 // exactly once, even if Start failed
//
// A System that keeps one shared client connection (net/rpc, gRPC, NATS,
// rawtcp-mux, banio-rtt, ...) opens it in Start and returns light Callers
// that all use it; a System that wants one connection per caller opens it in
// NewCaller. Either way Close must release everything: listeners,
// connections, and every goroutine the System or its Callers started, so
// that the smoke test finds no leaked goroutine afterwards. Errors must be
// returned, never panicked.
type System interface {
	// Start brings the servers up and connects the shared client side, if
	// any. It returns once the System is ready to serve calls. ctx bounds
	// the start-up only; it is cancelled after Start returns. A System
	// that needs something this machine lacks (a peer's server program
	// that is not installed) returns an error from unavailable("..."):
	// the harness then reports it as skipped, with that reason, instead of
	// failed.
	Start(ctx context.Context) error

	// NewCaller returns a Caller for one closed-loop caller goroutine. It
	// is called Case.Callers times after Start and before the first call.
	// A System that implements Measurer may return an error here: it is
	// never called for such a System.
	NewCaller() (Caller, error)

	// Close stops everything the System started. It is called exactly once
	// per System, also after a failed Start, and must not block for long
	// (a few seconds at most).
	Close() error
}

// Caller makes echo calls for one closed-loop caller goroutine. A Caller is
// used by one goroutine only, so it may keep per-caller state (reply buffers,
// channels) without locking; Callers of the same System are used
// concurrently.
type Caller interface {
	// Call sends payload as one request and returns the echoed reply, which
	// must have the same length and content. Call must not keep payload
	// after it returns: the harness rewrites it between calls. The returned
	// slice may be owned by the Caller and only valid until its next Call,
	// so that a System can reuse its reply buffer. ctx has no deadline (so
	// that systems which turn deadlines into per-call timers, like gRPC,
	// are not charged for them); it is cancelled when another caller of
	// the window failed or the window is stuck past its grace period, and
	// then Call must return soon with ctx.Err() or a wrapped transport
	// error: a Call that ignores ctx can hang the harness.
	Call(ctx context.Context, payload []byte) ([]byte, error)
}

// Measurer is an optional interface for a System whose measure is not a
// closed loop of calls, for example banio-broadcast, where one op is one
// message delivered to one of several subscribers. If a System implements
// Measurer, the harness never calls NewCaller; it calls Measure once for the
// warm-up (and discards the Sample) and once for the measured window. The
// harness still measures CPU time and allocations of the whole process
// around Measure and divides them by Sample.Ops.
type Measurer interface {
	// Measure runs the workload for c for about window and reports how many
	// ops completed. It must stop by itself when window has passed or ctx is
	// cancelled, and leave the System ready for another Measure or Close.
	Measure(ctx context.Context, c Case, window time.Duration) (Sample, error)
}

// CaseFilter is an optional interface for a System that can only run some
// cases, such as rawtcp-pingpong, which by design has exactly one caller.
// The harness asks once per case, on a fresh System from Entry.New that it
// then drops without Start or Close (so New must acquire nothing); a
// non-nil error skips the case and its message is reported as the reason.
type CaseFilter interface {
	Supports(c Case) error
}

// ExternalCPU is an optional interface for a System that runs part of
// itself in other processes, such as asynq-redis's redis-server. The
// harness adds the CPU time they used during the window to this process's
// own, so that CPU per op covers the whole system as it does for the
// systems that run entirely inside this process.
type ExternalCPU interface {
	// ExternalCPU returns the user plus system CPU time the System's
	// other processes have used so far, and whether it could be read.
	ExternalCPU() (time.Duration, bool)
}

// Sample is the outcome of one measured window.
type Sample struct {
	// Ops is the number of completed ops (calls, or deliveries for a
	// Measurer that says so in its Entry.Unit).
	Ops int64
	// Elapsed is the wall time the ops took, from the start of the window
	// until the last op counted in Ops completed.
	Elapsed time.Duration
	// Latency holds one latency per op; it may be nil or empty for a
	// Measurer that does not time single ops, and then p50/p99 are
	// reported as missing.
	Latency *Histogram
}
