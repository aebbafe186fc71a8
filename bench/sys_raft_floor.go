package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// raftFloor is raft-floor and its variants: the floor of dispatch-cluster-w4, the
// replication a job needs with nothing of banfleet in it. Three hashicorp/raft nodes
// in this process on loopback TCP (raft.NewTCPTransport on 127.0.0.1:0), each with
// raft-boltdb/v2 fsynced in a temp dir, a state machine that only counts, and the raft
// settings package cluster runs the bench's clusters with (values copied, no code
// shared: a floor built on our code would measure our code).
//
// A call commits its records on the leader and echoes the payload:
//
//	raft-floor             one raft.Apply of a record (≈ payload + 32 B) per call:
//	                       one commit per job, as with early outcomes
//	raft-floor-2           two Applies one after the other (Submitted, then Resolved):
//	                       a job whose outcome waits for its commit
//	raft-floor-batched     the callers' records are coalesced: one batcher goroutine
//	                       gathers what callers queue (yielding while more arrive,
//	                       up to 1 ms) and proposes it as one entry, up to
//	                       floorMaxInflight entries ahead of their commit (the
//	                       policy of package cluster's store); one waiter answers
//	                       them in order: the best group commit this stack allows
//	raft-floor-batched-2   the same, two records one after the other per call
//	raft-floor-batched-early  raft-floor-batched, then a second record (the outcome)
//	                       queued without waiting for it: what
//	                       dispatch-cluster-w4-early commits per job
//
// Without BatchApplyCh (as ours), raft's leader loop still takes every Apply that is
// ready into one write of its log, so raft-floor too commits many records per fsync;
// the batched variants also save raft's per-entry work.
type raftFloor struct {
	commits  int  // records committed one after the other per call: 1 or 2
	batched  bool // coalesce callers' records into shared entries
	trailing bool // then queue one more record, not waited for (batched only)

	dir     string
	nodes   []*floorNode
	leader  *floorNode
	batcher *floorBatcher
}

func newRaftFloor(commits int, batched, trailing bool) *raftFloor {
	return &raftFloor{commits: commits, batched: batched, trailing: trailing}
}

// The raft settings of the bench's clusters (bench/sys_dispatch_cluster.go and the
// defaults of package cluster's Config), copied as values.
const (
	floorHeartbeat         = 500 * time.Millisecond // Config.HeartbeatTimeout, ElectionTimeout
	floorLease             = 500 * time.Millisecond // Config.LeaderLeaseTimeout
	floorSnapshotInterval  = 2 * time.Minute
	floorSnapshotThreshold = 8192
	floorTrailingLogs      = 10240
	floorApplyTimeout      = 4 * floorHeartbeat // the leader's store: 4 × ElectionTimeout
	floorMaxInflight       = 32                 // entries proposed ahead of their commit
	floorMaxDelay          = time.Millisecond   // longest a gathering entry waits for more records
	floorMaxEntryBytes     = 4 << 20
	floorRecordHeader      = 32 // a record's bytes besides the payload (id, kind, attempt)
)

// floorNode is one raft member.
type floorNode struct {
	id     string
	r      *raft.Raft
	trans  *raft.NetworkTransport
	logs   *raftboltdb.BoltStore
	notify chan bool // raft's leadership changes
	fsm    *countFSM
}

// openFloorNode starts one member in dir.
func openFloorNode(id, dir string) (*floorNode, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	hlog := hclog.NewNullLogger()
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if err != nil {
		return nil, fmt.Errorf("raft-floor: raft-boltdb: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog)
	if err != nil {
		_ = logs.Close()
		return nil, err
	}
	trans, err := raft.NewTCPTransportWithLogger(loopback, nil, 3, 10*time.Second, hlog)
	if err != nil {
		_ = logs.Close()
		return nil, err
	}
	n := &floorNode{id: id, trans: trans, logs: logs, notify: make(chan bool, 16), fsm: &countFSM{}}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(id)
	rc.Logger = hlog
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = floorHeartbeat, floorHeartbeat, floorLease
	rc.SnapshotInterval, rc.SnapshotThreshold, rc.TrailingLogs = floorSnapshotInterval, floorSnapshotThreshold, floorTrailingLogs
	rc.BatchApplyCh = false
	rc.NotifyCh = n.notify
	if n.r, err = raft.NewRaft(rc, n.fsm, logs, logs, snaps, trans); err != nil {
		_ = trans.Close()
		_ = logs.Close()
		return nil, fmt.Errorf("raft-floor: %w", err)
	}
	return n, nil
}

// close shuts raft down, then its transport's connections and its log.
func (n *floorNode) close() error {
	err := n.r.Shutdown().Error()
	n.trans.CloseStreams()
	return errors.Join(err, n.trans.Close(), n.logs.Close())
}

// Start opens three members, bootstraps them and waits for a leader.
func (s *raftFloor) Start(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "bench-raftfloor-")
	if err != nil {
		return err
	}
	s.dir = dir
	var conf raft.Configuration
	for i := range 3 {
		id := fmt.Sprintf("f%d", i+1)
		n, err := openFloorNode(id, filepath.Join(dir, id))
		if err != nil {
			return err
		}
		s.nodes = append(s.nodes, n)
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: n.trans.LocalAddr()})
	}
	if err := s.nodes[0].r.BootstrapCluster(conf).Error(); err != nil {
		return fmt.Errorf("raft-floor: bootstrap: %w", err)
	}
	for s.leader == nil {
		select {
		case lead := <-s.nodes[0].notify:
			s.leaderIf(lead, 0)
		case lead := <-s.nodes[1].notify:
			s.leaderIf(lead, 1)
		case lead := <-s.nodes[2].notify:
			s.leaderIf(lead, 2)
		case <-ctx.Done():
			return fmt.Errorf("raft-floor: no leader: %w", ctx.Err())
		}
	}
	if s.batched {
		s.batcher = newFloorBatcher(s.leader.r)
	}
	return nil
}

func (s *raftFloor) leaderIf(lead bool, i int) {
	if lead {
		s.leader = s.nodes[i]
	}
}

// NewCaller returns a Caller on the leader.
func (s *raftFloor) NewCaller() (Caller, error) {
	if s.leader == nil {
		return nil, errors.New("raft-floor: not started")
	}
	return &floorCaller{s: s}, nil
}

// Close stops the batcher (its entries committed or failed), then every member. The
// batcher goes first, while raft runs: an Apply future has no shutdown channel, and
// raft's FSM goroutine exits on Shutdown without answering the committed batches
// still queued for it, so a waiter could wait on one for ever.
func (s *raftFloor) Close() error {
	var errs []error
	if s.batcher != nil {
		s.batcher.close()
		if e := s.batcher.entries.Load(); e > 0 {
			fmt.Fprintf(os.Stderr, "  %s: %d records in %d entries (%.1f records/entry), %.2f ms from Apply to its future's answer per entry\n",
				s.name(), s.batcher.records.Load(), e, float64(s.batcher.records.Load())/float64(e), float64(s.batcher.nanos.Load())/1e6/float64(e))
		}
	}
	for _, n := range s.nodes {
		errs = append(errs, n.close())
	}
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// name is the system's registry name, for the batcher's statistics.
func (s *raftFloor) name() string {
	n := "raft-floor"
	if s.batched {
		n += "-batched"
	}
	if s.commits > 1 {
		n += fmt.Sprintf("-%d", s.commits)
	}
	if s.trailing {
		n += "-early"
	}
	return n
}

// floorCaller is one caller: its record buffer and its pending request, reused.
type floorCaller struct {
	s   *raftFloor
	rec []byte
	req *floorRequest
}

// Call commits s.commits records carrying payload, one after the other, queues the
// trailing one if any, and echoes payload.
func (c *floorCaller) Call(ctx context.Context, payload []byte) ([]byte, error) {
	for kind := range c.s.commits {
		c.rec = append(c.rec[:0], floorHeader[:]...)
		c.rec[0] = byte(kind + 1)
		c.rec = append(c.rec, payload...)
		if err := c.commit(ctx); err != nil {
			return nil, err
		}
	}
	if c.s.trailing {
		// Its own copy: nobody waits for it, and c.rec is reused.
		out := append([]byte(nil), c.rec...)
		out[0]++
		if err := c.s.batcher.enqueue(&floorRequest{rec: out}); err != nil {
			return nil, err
		}
	}
	return c.rec[floorRecordHeader:], nil
}

// floorHeader stands for a record's id, kind and attempt.
var floorHeader [floorRecordHeader]byte

// commit commits c.rec: its own entry, or the batcher's next.
func (c *floorCaller) commit(ctx context.Context) error {
	if c.s.batcher == nil {
		// raft keeps an entry's bytes: each Apply gets its own copy. The future
		// ignores ctx, but raft answers it at the commit or when the leadership ends.
		return c.s.leader.r.Apply(append([]byte(nil), c.rec...), floorApplyTimeout).Error()
	}
	if c.req == nil {
		c.req = &floorRequest{done: make(chan error, 1)}
	}
	c.req.rec = c.rec
	if err := c.s.batcher.enqueue(c.req); err != nil {
		return err
	}
	select {
	case err := <-c.req.done:
		return err
	case <-ctx.Done():
		c.req, c.rec = nil, nil // the batcher may still hold both
		return ctx.Err()
	}
}

// floorRequest is one record waiting for the batcher's entry.
type floorRequest struct {
	rec  []byte
	done chan error // buffered: the waiter never blocks; nil: nobody waits
}

// floorEntry is one proposed entry and the requests it answers.
type floorEntry struct {
	f     raft.ApplyFuture
	reqs  []*floorRequest
	start time.Time
}

// floorBatcher coalesces records into entries: enqueue queues a record; the batcher
// goroutine gathers what is queued (gather) and proposes it as one entry
// (length-prefixed records) as soon as fewer than floorMaxInflight entries are
// outstanding, so that what arrives while it waits makes the next entry larger; the waiter goroutine takes the entries'
// futures in order and answers their requests.
type floorBatcher struct {
	r *raft.Raft

	// mu protects the following fields.
	mu      sync.Mutex
	pending []*floorRequest
	closed  bool

	kick     chan struct{}
	inflight chan floorEntry
	stopped  chan struct{} // closed when the waiter has answered everything

	entries, records atomic.Int64
	nanos            atomic.Int64 // Apply to future answered, summed over entries
}

var errFloorClosed = errors.New("raft-floor: closed")

func newFloorBatcher(r *raft.Raft) *floorBatcher {
	b := &floorBatcher{r: r, kick: make(chan struct{}, 1), inflight: make(chan floorEntry, floorMaxInflight-1), stopped: make(chan struct{})}
	go b.propose()
	go b.wait()
	return b
}

func (b *floorBatcher) enqueue(req *floorRequest) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errFloorClosed
	}
	first := len(b.pending) == 0
	b.pending = append(b.pending, req)
	b.mu.Unlock()
	if first {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// propose is the batcher goroutine, the only one that proposes entries.
func (b *floorBatcher) propose() {
	defer close(b.inflight)
	var buf []byte
	for {
		b.mu.Lock()
		n, closed := len(b.pending), b.closed
		b.mu.Unlock()
		if n == 0 {
			if closed {
				return
			}
			<-b.kick
			continue
		}
		if !closed {
			b.gather(n)
		}
		b.mu.Lock()
		batch := b.take()
		b.mu.Unlock()
		buf = buf[:0]
		for _, req := range batch {
			buf = binary.AppendUvarint(buf, uint64(len(req.rec)))
			buf = append(buf, req.rec...)
		}
		start := time.Now()
		f := b.r.Apply(append([]byte(nil), buf...), floorApplyTimeout)
		b.inflight <- floorEntry{f: f, reqs: batch, start: start}
	}
}

// gather lets the entry grow while callers keep queueing: it yields and looks again,
// until a yield brings nothing or floorMaxDelay has passed (the cluster store's policy).
// Without it, the batcher proposes every trickle of records as its own entry, and the
// followers' fsyncs of many small entries load the disk: at 64 callers a third of the
// throughput.
func (b *floorBatcher) gather(n int) {
	deadline := time.Now().Add(floorMaxDelay)
	for {
		runtime.Gosched()
		b.mu.Lock()
		now := len(b.pending)
		b.mu.Unlock()
		if now == n || !time.Now().Before(deadline) {
			return
		}
		n = now
	}
}

// take removes the next entry's requests (up to floorMaxEntryBytes, at least one)
// from the queue. b.mu is held.
func (b *floorBatcher) take() []*floorRequest {
	n, size := 0, 0
	for n < len(b.pending) && (n == 0 || size+len(b.pending[n].rec) <= floorMaxEntryBytes) {
		size += len(b.pending[n].rec)
		n++
	}
	batch := b.pending[:n:n]
	if n == len(b.pending) {
		b.pending = nil
	} else {
		b.pending = b.pending[n:]
	}
	return batch
}

// wait is the waiter goroutine: it answers each entry's requests once raft has.
func (b *floorBatcher) wait() {
	defer close(b.stopped)
	for e := range b.inflight {
		err := e.f.Error()
		if err == nil {
			b.entries.Add(1)
			b.records.Add(int64(len(e.reqs)))
			b.nanos.Add(int64(time.Since(e.start)))
		}
		for _, req := range e.reqs {
			if req.done != nil {
				req.done <- err
			}
		}
	}
}

// close stops taking records, proposes what is queued, and returns once every entry
// is answered.
func (b *floorBatcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	<-b.stopped
}

// countFSM is the floor's state machine: it counts what is committed, nothing more.
type countFSM struct {
	entries atomic.Uint64
}

var _ raft.BatchingFSM = (*countFSM)(nil)

// Apply counts one entry.
func (f *countFSM) Apply(*raft.Log) any {
	f.entries.Add(1)
	return nil
}

// ApplyBatch counts the command entries of logs.
func (f *countFSM) ApplyBatch(logs []*raft.Log) []any {
	for _, l := range logs {
		if l.Type == raft.LogCommand {
			f.entries.Add(1)
		}
	}
	return make([]any, len(logs))
}

// Snapshot captures the count.
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	return countSnapshot(f.entries.Load()), nil
}

// Restore reads a count back.
func (f *countFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	f.entries.Store(binary.LittleEndian.Uint64(b[:]))
	return nil
}

// countSnapshot is a snapshot of countFSM: its count.
type countSnapshot uint64

// Persist writes the count.
func (s countSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(binary.LittleEndian.AppendUint64(nil, uint64(s))); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release does nothing.
func (countSnapshot) Release() {}

// Interface checks.
var _ System = (*raftFloor)(nil)
