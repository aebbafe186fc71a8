package dispatch_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/worker"
)

// newRideClient connects a Client that reconnects fast, with dispatch options.
func newRideClient(t *testing.T, addr string, opts ...dispatch.Option) *dispatch.Client {
	t.Helper()
	c, err := dispatch.NewClient(addr, append([]dispatch.Option{dispatch.WithBanIO(
		banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond),
		banio.WithReconnectBackoff(fastBackoff),
	)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// doubler doubles the number in a job's payload, counting executions per id; while
// its gate is closed it holds every job.
type doubler struct {
	*execCounter
}

func (d doubler) handle(ctx context.Context, j *worker.Job) (any, error) {
	if _, err := d.execCounter.handle(ctx, j); err != nil {
		return nil, err
	}
	j.Progress(1, 1, "doubled")
	n, err := strconv.Atoi(string(j.Payload))
	if err != nil {
		return nil, err
	}
	return strconv.Itoa(2 * n), nil
}

// submitMany submits n doubling jobs with ids "<prefix><i>" and returns their tickets.
func submitMany(t *testing.T, c *dispatch.Client, prefix string, n int) []*dispatch.Ticket {
	t.Helper()
	tks := make([]*dispatch.Ticket, n)
	for i := range tks {
		tk, err := c.Submit(context.Background(), dispatch.Job{ID: prefix + strconv.Itoa(i), Type: "double", Payload: strconv.Itoa(i)})
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		tks[i] = tk
	}
	return tks
}

// checkDoubled waits for every ticket and checks its result.
func checkDoubled(t *testing.T, tks []*dispatch.Ticket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, tk := range tks {
		res, err := tk.Wait(ctx)
		if err != nil || string(res) != strconv.Itoa(2*i) {
			t.Fatalf("job %d: %q, %v; want %d", i, res, err, 2*i)
		}
	}
}

// TestClientRidesThroughMasterRestart: 300 jobs in flight when the master's server
// closes; a fresh in-memory Master comes up on the same address, the workers and the
// Client reconnect by themselves, the Client finds its jobs unknown and submits them
// again. Every ticket resolves once with the right result.
func TestClientRidesThroughMasterRestart(t *testing.T) {
	leakcheck.Check(t)
	const jobs = 300
	f := newFleet(t)
	d := doubler{newExecCounter(true)}
	for range 2 {
		f.startWorker(map[string]worker.Handler{"double": d.handle}, worker.WithConcurrency(50))
	}
	c := newRideClient(t, f.addr)
	tks := submitMany(t, c, "restart-", jobs)
	for range 100 {
		recv(t, d.started, "jobs running on the first master")
	}
	// The master dies: its server and every connection close, and it is gone. A
	// fresh master comes up on the same address, knowing nothing of the jobs.
	f.RestartMaster()
	m := f.Master()
	close(d.gate) // the old attempts end (their replies go nowhere); new ones run freely
	checkDoubled(t, tks)
	for _, tk := range tks {
		select {
		case <-tk.Done():
		default:
			t.Fatal("unresolved")
		}
	}
	if st := m.Stats(); st.Done != jobs {
		t.Logf("the new master ran %d jobs", st.Done)
	}
}

// TestClientCutNoDoubleExecution: the master stays up and the Client's connection is
// cut, once while the client cannot reconnect and the jobs end meanwhile (the master
// keeps them running for the caller grace and retains their outcomes), once while the
// jobs still run (they are re-pointed to the new connection, progress included). Every
// ticket resolves once with its result, and no job runs twice.
func TestClientCutNoDoubleExecution(t *testing.T) {
	leakcheck.Check(t)
	const jobs = 300
	f := newFleet(t)
	d := doubler{newExecCounter(true)}
	for range 2 {
		f.startWorker(map[string]worker.Handler{"double": d.handle}, worker.WithConcurrency(jobs))
	}
	c, p := f.LinkedClient()

	// Cut, with the jobs ending while the caller is away.
	tks := submitMany(t, c, "away-", jobs)
	for range jobs {
		recv(t, d.started, "jobs running")
	}
	p.Partition(true)
	waitFor(t, "the master to see its caller gone", func() bool { gone, _ := dispatch.CallerGone(f.master, "away-0"); return gone })
	close(d.gate)
	waitFor(t, "the jobs to end while their caller is away", func() bool { return f.master.Stats().Done == jobs })
	p.Partition(false)
	checkDoubled(t, tks)

	// Cut, with the jobs still running when the caller comes back.
	d.gate = make(chan struct{})
	tks = submitMany(t, c, "back-", jobs)
	for range jobs {
		recv(t, d.started, "jobs running")
	}
	before := make([]any, jobs)
	for i := range jobs {
		before[i] = dispatch.RemoteCaller(f.master, "back-"+strconv.Itoa(i))
	}
	p.Cut()
	// Taken over by the new connection, whether or not the master saw the old one
	// close first.
	waitFor(t, "the client to re-attach to every job", func() bool {
		for i := range jobs {
			if r := dispatch.RemoteCaller(f.master, "back-"+strconv.Itoa(i)); r == nil || r == before[i] {
				return false
			}
		}
		return true
	})
	close(d.gate)
	checkDoubled(t, tks)
	progressed := 0
	for _, tk := range tks {
		for range tk.Progress() {
			progressed++
		}
	}
	if progressed == 0 {
		t.Fatal("no progress report reached the re-attached client")
	}
	for _, prefix := range []string{"away-", "back-"} {
		for i := range jobs {
			if n := d.count(prefix + strconv.Itoa(i)); n != 1 {
				t.Fatalf("job %s%d ran %d times", prefix, i, n)
			}
		}
	}
}

// TestClientOldMasterFallsBackToResubmitting: a master that does not answer
// fleet.attach (one that predates it) does not hang a reconnected Client: after the
// attach timeout it submits its jobs again, which attach to the jobs the master holds.
func TestClientOldMasterFallsBackToResubmitting(t *testing.T) {
	leakcheck.Check(t)
	// The master's attach handler is replaced, on every connection, by one that
	// never answers.
	ft := fleettest.New(t, nil, fleettest.WithServerSetup(func(srv *banio.ServerIO) {
		prev := srv.InitConn
		srv.InitConn = func(c *banio.BanConn) {
			prev(c)
			c.Listen(protocol.ActionAttach, func(*banio.IOMsgRaw) {})
		}
	}))
	f := &fleet{Fleet: ft, t: t, master: ft.Master(), addr: ft.Addr()}
	d := doubler{newExecCounter(true)}
	f.startWorker(map[string]worker.Handler{"double": d.handle}, worker.WithConcurrency(20))
	c, p := f.LinkedClient(dispatch.WithAttachTimeout(50 * time.Millisecond))
	tks := submitMany(t, c, "old-", 20)
	for range 20 {
		recv(t, d.started, "jobs running")
	}
	p.Cut()
	waitFor(t, "the resubmissions to take the jobs over", func() bool {
		for i := range 20 {
			if gone, ok := dispatch.CallerGone(f.master, "old-"+strconv.Itoa(i)); !ok || gone {
				return false
			}
		}
		return true
	})
	close(d.gate)
	checkDoubled(t, tks)
	for i := range 20 {
		if n := d.count("old-" + strconv.Itoa(i)); n != 1 {
			t.Fatalf("job %d ran %d times", i, n)
		}
	}
}

// TestClientMasterLost: a master that never comes back fails the Client's calls with
// ErrMasterLost once the reconnect budget is spent, and new submissions too.
func TestClientMasterLost(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	d := doubler{newExecCounter(true)}
	f.startWorker(map[string]worker.Handler{"double": d.handle})
	c := newRideClient(t, f.addr, dispatch.WithReconnectBudget(200*time.Millisecond))
	tk, err := c.Submit(context.Background(), dispatch.Job{ID: "lost", Type: "double", Payload: "1"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, d.started, "job running")
	f.StopMaster()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = tk.Wait(ctx)
	if !errors.Is(err, dispatch.ErrMasterLost) || !strings.Contains(err.Error(), f.addr) || !strings.Contains(err.Error(), "200ms") {
		t.Fatalf("after the budget: %v, want ErrMasterLost naming the master and the budget", err)
	}
	if _, err := c.Submit(context.Background(), dispatch.Job{Type: "double", Payload: "2"}); !errors.Is(err, dispatch.ErrMasterLost) {
		t.Fatalf("a submission while the master is lost: %v", err)
	}
	close(d.gate)
}

// TestCallerGoneCancelledAfterGrace: the jobs of a caller that never comes back run on
// for the caller grace, then are cancelled on their worker.
func TestCallerGoneCancelledAfterGrace(t *testing.T) {
	leakcheck.Check(t)
	const grace = 150 * time.Millisecond
	f := newFleet(t, dispatch.WithCallerGrace(grace))
	started, ended := make(chan struct{}, 1), make(chan error, 1)
	f.startWorker(map[string]worker.Handler{"wait": ctxObserver(started, ended)})
	c, p := f.LinkedClient()
	if _, err := c.Submit(context.Background(), dispatch.Job{ID: "orphan", Type: "wait"}); err != nil {
		t.Fatal(err)
	}
	recv(t, started, "job start")
	cut := time.Now()
	p.Partition(true)
	recv(t, ended, "the job cancelled once its caller's grace passed")
	if d := time.Since(cut); d < grace {
		t.Fatalf("the job was cancelled %v after its caller left, before the %v grace", d, grace)
	}
	// The outcome is retained: the id is not run again by a resubmission.
	waitFor(t, "the job resolved", func() bool { _, ok := dispatch.CallerGone(f.master, "orphan"); return !ok })
	c2 := newRideClient(t, f.addr)
	tk, err := c2.Submit(context.Background(), dispatch.Job{ID: "orphan", Type: "wait"})
	if err != nil {
		t.Fatal(err)
	}
	bounded, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tk.Wait(bounded); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "re-attach") {
		t.Fatalf("the retained outcome of a job cancelled after its grace: %v", err)
	}
}

// TestIdempotentIDsRemote: a remote submission of an id the master holds, queued,
// running, or resolved and retained, gets that job's outcome; it runs once. After the
// retention period the id is new again.
func TestIdempotentIDsRemote(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	e := newExecCounter(true)
	f.startWorker(map[string]worker.Handler{"count": e.handle}, worker.WithConcurrency(1))
	c1, c2 := newRideClient(t, f.addr), newRideClient(t, f.addr)
	ctx := context.Background()
	submit := func(c *dispatch.Client, id, payload string) *dispatch.Ticket {
		t.Helper()
		tk, err := c.Submit(ctx, dispatch.Job{ID: id, Type: "count", Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	running := submit(c1, "running", "a")
	recv(t, e.started, "first job running")
	queued := submit(c1, "queued", "b")
	waitFor(t, "job queued", func() bool { return f.master.Stats().Queued == 1 })
	runningAgain, queuedAgain := submit(c2, "running", "a"), submit(c2, "queued", "b")
	sameClient := submit(c1, "running", "a")
	conflict := submit(newRideClient(t, f.addr), "queued", "other") // a client that does not hold it: the master says so
	bounded, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := conflict.Wait(bounded); !errors.Is(err, dispatch.ErrIDConflict) {
		t.Fatalf("same id, other payload, remotely: %v", err)
	}
	close(e.gate)
	for _, tk := range []*dispatch.Ticket{running, runningAgain, sameClient} {
		wantResult(t, tk, "r:a")
	}
	for _, tk := range []*dispatch.Ticket{queued, queuedAgain} {
		wantResult(t, tk, "r:b")
	}
	wantResult(t, submit(c2, "running", "a"), "r:a") // retained
	if e.count("running") != 1 || e.count("queued") != 1 {
		t.Fatalf("executions: running %d, queued %d; want 1 each", e.count("running"), e.count("queued"))
	}

	t.Run("after retention", func(t *testing.T) {
		f := newFleet(t, dispatch.WithResultRetention(20*time.Millisecond))
		e := newExecCounter(false)
		f.startWorker(map[string]worker.Handler{"count": e.handle})
		c := newRideClient(t, f.addr)
		wantResult(t, submit(c, "x", "p"), "r:p")
		waitFor(t, "the id to be new again", func() bool {
			wantResult(t, submit(c, "x", "p"), "r:p")
			return e.count("x") == 2
		})
	})
}

// TestClientMasterLostBehindDyingListener: after the master dies, something still
// accepts connections on its address and drops them at once (a master's listener
// outliving it for a moment, a load balancer). Each reconnect reaches it, and none is a
// master: the Client must not take them for the master's return, and its calls fail
// with ErrMasterLost once the budget is spent.
func TestClientMasterLostBehindDyingListener(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	c := newRideClient(t, f.addr, dispatch.WithReconnectBudget(300*time.Millisecond))
	tk, err := c.Submit(context.Background(), dispatch.Job{ID: "stranded", Type: "nobody-serves-it"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job queued", func() bool { return f.master.Stats().Queued == 1 })
	f.StopMaster()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	var accepted sync.WaitGroup
	accepted.Add(1)
	go func() {
		defer accepted.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			_ = nc.Close()
		}
	}()
	defer func() { ln.Close(); accepted.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tk.Wait(ctx); !errors.Is(err, dispatch.ErrMasterLost) {
		t.Fatalf("behind a listener that drops every connection: %v, want ErrMasterLost", err)
	}
}

// TestClientBlobRidesThrough: a blob upload made while the master is away waits for it
// and succeeds once it is back; with the master gone for the whole reconnect budget it
// fails with ErrMasterLost.
func TestClientBlobRidesThrough(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	c := newRideClient(t, f.addr, dispatch.WithReconnectBudget(10*time.Second))
	f.StopMaster()
	waitFor(t, "the client to see the master gone", func() bool { return dispatch.ClientDown(c) })
	put := make(chan error, 1)
	go func() {
		_, err := c.PutBlob(context.Background(), []byte("bars, say"))
		put <- err
	}()
	f.StartMaster()
	m := f.Master()
	if err := recv(t, put, "the upload"); err != nil {
		t.Fatalf("PutBlob across the restart: %v", err)
	}
	if n := m.BlobStats().Count; n != 1 {
		t.Fatalf("the new master holds %d blobs, want the upload", n)
	}
	// Gone for good: the budget bounds the wait.
	lost := newRideClient(t, f.addr, dispatch.WithReconnectBudget(200*time.Millisecond))
	f.StopMaster()
	waitFor(t, "the second client to see the master gone", func() bool { return dispatch.ClientDown(lost) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := lost.PutBlob(ctx, []byte("more bars")); !errors.Is(err, dispatch.ErrMasterLost) {
		t.Fatalf("PutBlob with the master gone: %v, want ErrMasterLost", err)
	}
}

// TestClientUnansweredWhenReplicatedStoreFails: a master on a replicated store
// (WithOutcomesAfterCommit, as a cluster's leader runs) whose store failed answers no
// submission, neither one whose Submitted record failed nor one refused because the
// store had failed: the leadership is over, and the Client, once its connection closes,
// submits both again to the next master. An answer would fail their Tickets.
func TestClientUnansweredWhenReplicatedStoreFails(t *testing.T) {
	leakcheck.Check(t)
	f := newDurableFleet(t, dispatch.WithOutcomesAfterCommit())
	d := doubler{newExecCounter(false)}
	f.startWorker(map[string]worker.Handler{"double": d.handle})
	c := newRideClient(t, f.addr)
	checkDoubled(t, submitMany(t, c, "before-", 5))

	f.mu.Lock()
	f.store.crashed.Store(true) // every record fails from now on; the master runs on
	f.mu.Unlock()
	// A remote job whose Submitted record fails to commit, then (once an in-process
	// Submit has seen the store fail) remote jobs refused by a master whose store
	// failed.
	failed := submitMany(t, c, "failed-", 1)
	if _, err := f.master.Submit(context.Background(), dispatch.Job{ID: "probe", Type: "double", Payload: "1"}); err == nil {
		t.Fatal("a job was accepted on a failed store")
	}
	refused := submitMany(t, c, "refused-", 9)
	f.kill()
	f.restart()
	checkDoubled(t, failed)
	checkDoubled(t, refused)
	checkRanOnce(t, d.execCounter, "failed-", len(failed))
	checkRanOnce(t, d.execCounter, "refused-", len(refused))
}
