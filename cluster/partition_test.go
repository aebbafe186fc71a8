package cluster

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/store"
)

// partitionLayer is raft's TCP stream layer (a loopback listener and net.Dial) with a
// switch that cuts the member off: while cut, it dials nothing, drops what it
// accepts, and has closed every connection it had, both ways. Only raft's traffic
// is cut: the member's workers and callers stay connected to it.
type partitionLayer struct {
	net.Listener

	// mu protects the following fields.
	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func newPartitionLayer(t *testing.T) *partitionLayer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &partitionLayer{Listener: ln, conns: make(map[net.Conn]struct{})}
}

func (p *partitionLayer) Accept() (net.Conn, error) {
	for {
		c, err := p.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if p.track(c) {
			return c, nil
		}
	}
}

func (p *partitionLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	p.mu.Lock()
	cut := p.cut
	p.mu.Unlock()
	if cut {
		return nil, errors.New("partitioned")
	}
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil || !p.track(c) {
		return nil, errors.Join(err, errors.New("partitioned"))
	}
	return c, nil
}

// track keeps c to close when cut, or closes it if cut already.
func (p *partitionLayer) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// partition cuts the member off.
func (p *partitionLayer) partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// A leader cut off from the other members while a job runs on its worker: the
// worker's reply still reaches it, but its Resolved record cannot commit, so the
// reply resolves nothing (fencing: the outcome waits for its commit, which fails
// when the leadership ends). The new leader holds the job running, as the last
// committed record left it. Nor does the cut-off member accept a new job.
func TestPartitionedLeaderLateReplyResolvesNothing(t *testing.T) {
	leakcheck.Check(t)
	layers := make(map[string]*partitionLayer)
	c := newTestCluster(t, 3, func(cfg *Config) {
		withTestServers(cfg)
		l := newPartitionLayer(t)
		layers[cfg.ID] = l
		cfg.StreamLayer = l
	})
	old := c.leader()
	cnt := newCounter(true)
	startWorker(t, old.node.BanioAddr(), cnt.handle)
	m := old.node.Master()
	waitWorkers(t, m, 1)
	tk, err := m.Submit(context.Background(), dispatch.Job{ID: "late", Type: "double", Payload: "21"})
	if err != nil {
		t.Fatal(err)
	}
	recvID(t, cnt.started, "the job started on the worker")

	stepped := old.node.Changed()
	layers[old.cfg.ID].partition()
	close(cnt.gate) // the worker replies now, to the cut-off leader
	res, err := tk.Wait(waitCtx(t))
	if err == nil {
		t.Fatalf("the cut-off leader resolved the job with the late reply %q", res)
	}
	if !errors.Is(err, dispatch.ErrClosed) {
		t.Fatalf("the job's ticket: %v, want ErrClosed (the record did not commit)", err)
	}
	if _, err := m.Submit(context.Background(), dispatch.Job{ID: "new", Type: "double", Payload: "1"}); err == nil {
		t.Fatal("the cut-off leader accepted a job")
	}
	select {
	case <-stepped:
	case <-waitCtx(t).Done():
		t.Fatal("the cut-off leader did not step down")
	}
	lead := c.leader()
	if lead == old {
		t.Fatal("the cut-off member leads again")
	}
	js := lookup(lead, "late")
	if js.Phase != store.PhaseRunning || js.Attempt != 1 {
		t.Fatalf("the new leader holds the job as %v (attempt %d), want running attempt 1: the late reply must not have resolved it", js.Phase, js.Attempt)
	}
	if js := lookup(lead, "new"); js.Phase != store.PhaseUnknown {
		t.Fatalf("the job submitted to the cut-off member is in the new leader's state: %v", js.Phase)
	}
}

// recvID waits for one id on ch.
func recvID(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	select {
	case id := <-ch:
		return id
	case <-time.After(testWait):
		t.Fatalf("timed out waiting for %s", what)
		return ""
	}
}
