package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/store"
	"github.com/banfleet/banfleet/worker"
)

// Workers and Clients given every master's address follow the leader of a cluster: a
// follower's ServerIO answers not_leader (banio.ServerIO.SetNotLeader), and after a
// failover they register and re-attach with the new leader as after a restart.

// follower serves a ServerIO that answers every connection with not_leader naming
// leader, on addr ("" for a fresh loopback port), until the test ends or stop.
func follower(t *testing.T, addr, leader string) (srv *banio.ServerIO, listenAddr string, stop func()) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv = banio.NewBanServer("", "follower", banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond))
	srv.SetNotLeader(leader)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	stop = func() { _ = srv.Close(); <-served }
	t.Cleanup(stop)
	return srv, ln.Addr().String(), stop
}

// TestFollowTheLeader: a worker and a Client given a follower's address first reach the
// leader's Master, and a job runs.
func TestFollowTheLeader(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	fsrv, faddr, _ := follower(t, "", f.addr)
	list := faddr + "," + f.addr
	startWorkerAt(t, f.master, list, map[string]worker.Handler{"echo": echo})
	c := newRideClient(t, list)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Call(ctx, "echo", "hi")
	if err != nil || string(res) != "hi" {
		t.Fatalf("Call through a follower: %q, %v", res, err)
	}
	if n := fsrv.Redirected(); n < 2 {
		t.Fatalf("the follower redirected %d connections, want the worker's and the client's", n)
	}
}

// fencedStore is the store as a demoted leader sees it: once fenced it takes no record,
// as a raft node that lost leadership can commit nothing, while the next leader applies
// to the same state.
type fencedStore struct {
	store.Store
	fenced atomic.Bool
}

var errFenced = fmt.Errorf("test: no longer the leader: %w", store.ErrFenced)

func (s *fencedStore) Apply(ctx context.Context, recs ...store.Record) error {
	if s.fenced.Load() {
		return errFenced
	}
	return s.Store.Apply(ctx, recs...)
}

func (s *fencedStore) ApplyThen(then func(error), recs ...store.Record) error {
	if s.fenced.Load() {
		return errFenced
	}
	return s.Store.ApplyThen(then, recs...)
}

// TestFailoverReadoptsHeldAttempt: a job runs on a worker when its leader becomes a
// follower (its store fenced, its connections and its Master closed) and another
// node's master opens on the same store. The worker re-registers with the new leader,
// which re-adopts its held attempt; the Client re-attaches there; the Ticket resolves
// once, and the job ran once.
func TestFailoverReadoptsHeldAttempt(t *testing.T) {
	leakcheck.Check(t)
	mem := store.NewMem()
	defer mem.Close()
	fast := banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond)
	opts := []dispatch.Option{dispatch.WithRetryBackoff(time.Millisecond, 10*time.Millisecond), dispatch.WithOrphanGrace(time.Hour)}

	// Node a leads; node b follows, pointing at a.
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrA := lnA.Addr().String()
	srvA := banio.NewBanServer("", "a", fast)
	fsA := &fencedStore{Store: mem}
	logsA := &logBuffer{}
	mA, err := dispatch.OpenMaster(srvA, fsA, append([]dispatch.Option{dispatch.WithLogger(logsA.logger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	servedA := make(chan struct{})
	go func() { defer close(servedA); _ = srvA.Serve(lnA) }()
	defer func() { _ = mA.Close(); _ = srvA.Close(); <-servedA }()
	_, addrB, stopFollowerB := follower(t, "", addrA)

	e := newExecCounter(true)
	w := startWorkerAt(t, mA, addrB+","+addrA, map[string]worker.Handler{"job": e.handle})
	c := newRideClient(t, addrA+","+addrB)
	tk, err := c.Submit(context.Background(), dispatch.Job{ID: "failover-1", Type: "job", Payload: "x"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, e.started, "the job running under a")

	// a loses the leadership: it records nothing more, sends new connections to b,
	// closes what it served, and closes its master.
	fsA.fenced.Store(true)
	// A job submitted now is refused: the store says another master owns the jobs.
	if _, err := mA.Submit(context.Background(), dispatch.Job{ID: "after-fence", Type: "job", Payload: "y"}); err == nil {
		t.Fatal("a demoted master accepted a job")
	}
	srvA.SetNotLeader(addrB)
	for _, conn := range srvA.Conns() {
		_ = conn.Close()
	}
	_ = mA.Close()
	// Losing the leadership is not a store failure: a's master says so once, at Info.
	if n := logsA.count("level=ERROR"); n != 0 {
		t.Errorf("the demoted master logged %d errors:\n%s", n, logsA.String())
	}
	if n := logsA.count("the job store is fenced"); n != 1 {
		t.Errorf("the demoted master said %d times that its store is fenced, want once:\n%s", n, logsA.String())
	}

	// b takes over: its follower's listener makes way for its master, on the same
	// address and the same store.
	stopFollowerB()
	lnB, err := net.Listen("tcp", addrB)
	if err != nil {
		t.Fatal(err)
	}
	srvB := banio.NewBanServer("", "b", fast)
	mB, err := dispatch.OpenMaster(srvB, mem, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if st := mB.Stats(); st.Orphaned != 1 {
		t.Fatalf("the new leader holds %d orphaned attempts, want the running job's", st.Orphaned)
	}
	servedB := make(chan struct{})
	go func() { defer close(servedB); _ = srvB.Serve(lnB) }()
	defer func() { _ = mB.Close(); _ = srvB.Close(); <-servedB }()

	fb := &fleet{t: t, master: mB, addr: addrB}
	fb.awaitWorkers("the worker registered with b", func() bool { return fb.registered(w.ID()) == 1 })
	waitFor(t, "the held attempt re-adopted", func() bool { return mB.Stats().Orphaned == 0 })
	close(e.gate)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := tk.Wait(ctx)
	if err != nil || string(res) != "r:x" {
		t.Fatalf("the ticket after the failover: %q, %v", res, err)
	}
	if n := e.count("failover-1"); n != 1 {
		t.Fatalf("the job ran %d times, want once", n)
	}
	if st := mB.Stats(); st.Done != 1 {
		t.Fatalf("the new leader resolved %d jobs, want 1", st.Done)
	}
}

// TestClientMasterLostNamesEveryAddress: a Client of a cluster that stays unreachable
// fails its calls with ErrMasterLost naming every master it tried: the address it was
// given, a follower, and the leader that follower sent it to.
func TestClientMasterLostNamesEveryAddress(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	_, faddr, stopFollower := follower(t, "", f.addr)
	d := doubler{newExecCounter(true)}
	f.startWorker(map[string]worker.Handler{"double": d.handle})
	c := newRideClient(t, faddr, dispatch.WithReconnectBudget(300*time.Millisecond))
	tk, err := c.Submit(context.Background(), dispatch.Job{ID: "lost", Type: "double", Payload: "1"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, d.started, "the job running on the leader")
	_ = f.Server().Close()
	_ = f.master.Close()
	stopFollower()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = tk.Wait(ctx)
	if !errors.Is(err, dispatch.ErrMasterLost) || !strings.Contains(err.Error(), f.addr) || !strings.Contains(err.Error(), faddr) {
		t.Fatalf("after the budget: %v, want ErrMasterLost naming the follower and the leader", err)
	}
	close(d.gate)
}

// startWorkerAt runs a worker given addrs (a comma-separated list of masters) until the
// test ends, and returns once m has registered it. fleettest's workers dial their
// fleet's one master; these tests give a worker a cluster's list.
func startWorkerAt(t *testing.T, m *dispatch.Master, addrs string, handlers map[string]worker.Handler) *worker.Worker {
	t.Helper()
	w := worker.New(addrs, worker.WithBanIO(
		banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond),
		banio.WithReconnectBackoff(fastBackoff),
	), worker.WithDrainGrace(2*time.Second))
	for typ, h := range handlers {
		w.Handle(typ, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	f := &fleet{t: t, master: m}
	f.awaitWorkers("worker registered", func() bool { return f.registered(w.ID()) > 0 })
	return w
}
