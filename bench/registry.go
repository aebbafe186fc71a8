package main

import (
	"fmt"
	"strings"

	"github.com/banfleet/banfleet/banio"
)

// Entry registers one system under test. Its Name is what -systems selects,
// what the report prints, and what the ratios section refers to.
type Entry struct {
	// Name is unique, lower-case, without spaces or commas.
	Name string
	// Unit names one op of this system, singular: "call" (the default when
	// empty) for request/reply systems, "delivery" for a broadcast that
	// counts messages delivered to subscribers. Ratios are computed only
	// between systems with the same unit.
	Unit string
	// About is one line saying what the system measures; it is printed
	// under the report.
	About string
	// New returns a fresh, not yet started System. It is called once per
	// repeat of every case.
	New func() System
}

// unit returns e.Unit, or "call" when it is empty.
func (e Entry) unit() string {
	if e.Unit == "" {
		return "call"
	}
	return e.Unit
}

// registry lists every system the harness knows, in report order. To add a
// system, append an Entry here; its implementation lives in its own
// sys_<name>.go file.
var registry = []Entry{
	{
		Name:  "rawtcp-pingpong",
		About: "one caller, strict ping-pong, 4-byte length framing, one TCP connection: the latency floor",
		New:   func() System { return newPingPong(false) },
	},
	{
		Name:  "rawtcp-handoff",
		About: "rawtcp-pingpong, but a reader goroutine reads each reply and hands it to the caller over a channel: the price of one goroutine handoff",
		New:   func() System { return newPingPong(true) },
	},
	{
		Name:  "rawtcp-mux",
		About: "many callers over one TCP connection, request ids, one coalescing writer and one reader per side: the throughput floor",
		New:   func() System { return newMux() },
	},
	{
		Name:  "rawtcp-mux-owned",
		About: "rawtcp-mux with banio-rtt's contract: each side reads every payload into memory of its own, and the server answers from one handler goroutine fed by its reader: the floor of banio-rtt",
		New:   func() System { return newMuxOwned() },
	},
	{
		Name:  "netrpc",
		About: "standard library net/rpc (gob) over one TCP connection, one shared *rpc.Client",
		New:   func() System { return newNetRPC() },
	},
	{
		Name:  "grpc",
		About: "gRPC unary calls over one ClientConn (HTTP/2), insecure, pass-through bytes codec",
		New:   func() System { return newGRPC() },
	},
	{
		Name:  "nats-w1",
		About: "embedded nats-server, callers share one client connection, 1 responder connection in a queue group (broker hop)",
		New:   func() System { return newNATS(1) },
	},
	{
		Name:  "nats-w4",
		About: "embedded nats-server, callers share one client connection, 4 responder connections in a queue group (broker hop)",
		New:   func() System { return newNATS(4) },
	},
	{
		Name:  "banio-rtt",
		About: "banio round trip: one shared ClientIO, SetWait → WriteMsg → server handler SendWaitRes → WaitResult, default options (fast codec negotiated)",
		New:   func() System { return newBanioRTT() },
	},
	{
		Name:  "banio-rtt-inline",
		About: "banio-rtt with the echo handler registered by ListenInline (it never blocks), so it runs on the server's read loop instead of its handler goroutine",
		New:   func() System { return &banioRTT{inline: true} },
	},
	{
		Name:  "banio-rtt-zlib",
		About: "banio-rtt with WithCodec(CodecZlib) on both sides: banbot's wire format (gob frame + zlib payload)",
		New:   func() System { return newBanioRTT(banio.WithCodec(banio.CodecZlib)) },
	},
	{
		Name:  "rawtcp-relay-w4",
		About: "the floor of a broker hop over raw TCP, nothing of banfleet in it: callers share one connection to a stateless relay that forwards each request to 4 echo workers in turn and the answers back; its read loops only append to the destinations' buffers and signal each one once per read batch, one writer goroutine per socket (nats-server's write path)",
		New:   func() System { return newRawRelay(4) },
	},
	{
		Name:  "rawtcp-relay-owned-w4",
		About: "rawtcp-relay-w4 with dispatch-w4's contract: the relay keeps each request in memory of its own until its answer passes, the workers and the client read every payload into memory of their own, and the workers answer from a handler goroutine: the floor of dispatch-w4",
		New:   func() System { return newRawRelayOwned(4) },
	},
	{
		Name:  "rawtcp-relay-durable-w4",
		About: "rawtcp-relay-w4 that forwards each request only once it is on disk: one committer writes the waiting requests into a zero-filled log file and fdatasyncs it, one sync per batch, then forwards them: the floor of dispatch-durable-w4",
		New:   func() System { return newRawRelayDurable(4, false) },
	},
	{
		Name:  "rawtcp-relay-durable-early-w4",
		About: "rawtcp-relay-durable-w4 that forwards each request at once, while it is logged, and holds its answer until the request is on disk: the same guarantee to the caller, with the worker's round trip overlapping the sync",
		New:   func() System { return newRawRelayDurable(4, true) },
	},
	{
		Name:  "banio-relay-w4",
		About: "the cheapest broker over banio: a relay forwards each request to 4 echo workers in turn and the answers back, keeping no state (no job record, routing by load, retries, timeouts or tracing): the floor for dispatch-w4",
		New:   func() System { return newBanioRelay(4) },
	},
	{
		Name:  "dispatch-w1",
		About: "one remote dispatch.Client → master (ServerIO + dispatch.Master) → 1 worker (64 slots) → master → client (broker-style hop)",
		New:   func() System { return newDispatch(1) },
	},
	{
		Name:  "dispatch-w4",
		About: "the same with 4 workers of 64 slots each",
		New:   func() System { return newDispatch(4) },
	},
	{
		Name:  "dispatch-w4-metrics",
		About: "dispatch-w4 with metrics on, as the daemons run: an OpenTelemetry SDK MeterProvider with a Prometheus exporter registered, given to the master and the workers (gathered once, at the end)",
		New:   func() System { return newMeteredDispatch(4) },
	},
	{
		Name:  "dispatch-durable-w4",
		About: "dispatch-w4 with a durable master (dispatch.OpenMaster on a bolt file, fsynced per group commit, as cmd/master runs by default): every job's Submitted, AttemptStarted, Resolved and Collected records are committed",
		New:   func() System { return newDurableDispatch(4) },
	},
	{
		Name:  "dispatch-cluster-w4",
		About: "dispatch-w4 on a cluster of three masters in this process (package cluster: hashicorp/raft over its TCP transport on loopback, raft-boltdb fsynced): every job's records are committed by a quorum in group-committed raft entries; workers and client on the leader",
		New:   func() System { return newClusterDispatch(4, false) },
	},
	{
		Name:  "dispatch-cluster-w4-early",
		About: "dispatch-cluster-w4 with cluster.Config.EarlyOutcomes: an outcome reaches its caller before its Resolved record commits, as with a single durable master (one commit fewer per job)",
		New:   func() System { return newClusterDispatch(4, true) },
	},
	{
		Name:  "raft-floor",
		About: "the floor of dispatch-cluster-w4-early, nothing of banfleet in it: three hashicorp/raft nodes in this process (TCP transport on loopback, raft-boltdb fsynced, the cluster's raft settings), a state machine that only counts; a call is one raft.Apply of a payload-sized record on the leader",
		New:   func() System { return newRaftFloor(1, false, false) },
	},
	{
		Name:  "raft-floor-2",
		About: "raft-floor with two Applies one after the other per call (Submitted, then Resolved): the floor of dispatch-cluster-w4, whose outcomes wait for their commit",
		New:   func() System { return newRaftFloor(2, false, false) },
	},
	{
		Name:  "raft-floor-batched",
		About: "raft-floor with the callers' records coalesced: one batcher gathers what is queued (yielding while more arrives, up to 1 ms) and proposes it as one entry, up to 32 entries ahead of their commit (the cluster store's policy): the best group commit on this stack",
		New:   func() System { return newRaftFloor(1, true, false) },
	},
	{
		Name:  "raft-floor-batched-early",
		About: "raft-floor-batched, then a second record (the outcome) queued without waiting for its commit: the work dispatch-cluster-w4-early commits per job, one commit on its path",
		New:   func() System { return newRaftFloor(1, true, true) },
	},
	{
		Name:  "raft-floor-batched-2",
		About: "raft-floor-batched with two records one after the other per call: the batched floor of dispatch-cluster-w4",
		New:   func() System { return newRaftFloor(2, true, false) },
	},
	{
		Name: "asynq-redis",
		About: "durable-queue peer of dispatch-w4: github.com/hibiken/asynq on its own redis-server (loopback, appendonly yes, appendfsync everysec, no RDB snapshots); " +
			"Client.Enqueue (unique TaskID, Retention 1 min, MaxRetry 0) → 4 asynq.Servers of Concurrency 64 (TaskCheckInterval 200 µs) echo via ResultWriter().Write → " +
			"the caller polls Inspector.GetTaskInfo (200 µs after the enqueue, doubling to 5 ms) until completed; CPU includes redis-server's",
		New: func() System { return newAsynq(4, 64) },
	},
	{
		Name:  "banio-broadcast",
		Unit:  "delivery",
		About: "one producer, ServerIO.Broadcast to 4 subscribed ClientIOs, at most 128 messages ahead of the slowest; one op = one message delivered to one subscriber, order checked",
		New:   func() System { return newBanioBroadcast() },
	},
}

// selectSystems returns the registry entries named in list (a comma
// separated list, or "all"/"" for every entry), in registry order.
func selectSystems(list string) ([]Entry, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "all" {
		return registry, nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if _, ok := lookupEntry(name); !ok {
			return nil, fmt.Errorf("unknown system %q (known: %s)", name, strings.Join(entryNames(), ", "))
		}
		want[name] = true
	}
	var out []Entry
	for _, e := range registry {
		if want[e.Name] {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-systems %q selects no system", list)
	}
	return out, nil
}

// lookupEntry finds a registry entry by name.
func lookupEntry(name string) (Entry, bool) {
	for _, e := range registry {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// entryNames lists the registered system names in registry order.
func entryNames() []string {
	names := make([]string, len(registry))
	for i, e := range registry {
		names[i] = e.Name
	}
	return names
}
