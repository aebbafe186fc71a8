package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/worker"
)

func newClient(t *testing.T, addr string) *dispatch.Client { return newClientB(t, addr) }

// newClientB connects a remote client whose heartbeat matches newFleet's master (the
// master drops connections silent for longer than its timeout).
func newClientB(t testing.TB, addr string) *dispatch.Client {
	t.Helper()
	c, err := dispatch.NewClient(addr, dispatch.WithBanIO(banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRemoteClientCallAndErrors(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t, dispatch.WithQueueLimit(1))
	f.startWorker(map[string]worker.Handler{
		"echo": echo,
		"fail": func(context.Context, *worker.Job) (any, error) {
			return nil, &worker.Error{Code: "E1", Retryable: false, Err: errors.New("nope")}
		},
	}, worker.WithConcurrency(1))
	c := newClient(t, f.addr)
	ctx := context.Background()

	res, err := c.Call(ctx, "echo", []byte("over the wire"))
	if err != nil || string(res) != "over the wire" {
		t.Fatalf("remote call: %q %v", res, err)
	}
	_, err = c.Call(ctx, "fail", nil)
	var re *dispatch.RemoteError
	if !errors.As(err, &re) || re.Code != "E1" || re.Message != "nope" {
		t.Fatalf("remote error: %v", err)
	}
}

func TestRemoteClientTimeoutCancelAndQueueFull(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t, dispatch.WithQueueLimit(1))
	started, ended := make(chan struct{}, 4), make(chan error, 4)
	f.startWorker(map[string]worker.Handler{"wait": ctxObserver(started, ended)}, worker.WithConcurrency(1))
	c := newClient(t, f.addr)
	ctx := context.Background()

	tk, err := c.Submit(ctx, dispatch.Job{Type: "wait", Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "remote job start")
	if _, err := tk.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("remote timeout: %v", err)
	}
	recv(t, ended, "handler context ended")

	cctx, cancel := context.WithCancel(ctx)
	tk, err = c.Submit(cctx, dispatch.Job{Type: "wait"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "remote job start")
	// The worker is busy (capacity 1): one more job queues, the next finds the queue full.
	queued, err := c.Submit(cctx, dispatch.Job{Type: "wait"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job queued", func() bool { return f.master.Stats().Queued == 1 })
	if _, err := c.Call(ctx, "wait", nil); !errors.Is(err, dispatch.ErrQueueFull) {
		t.Fatalf("full queue through a client: %v", err)
	}
	cancel()
	if _, err := tk.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("remote cancel: %v", err)
	}
	if _, err := queued.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("remote cancel of a queued job: %v", err)
	}
	recv(t, ended, "handler cancelled through client → master → worker")
}

func TestRemoteProgress(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	step := make(chan struct{})
	f.startWorker(map[string]worker.Handler{"steps": func(ctx context.Context, j *worker.Job) (any, error) {
		for i := int64(1); i <= 3; i++ {
			j.Progress(i, 3, "step")
			<-step
		}
		return "done", nil
	}})
	c := newClient(t, f.addr)
	tk, err := c.Submit(context.Background(), dispatch.Job{Type: "steps"})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 3; i++ {
		p := recv(t, tk.Progress(), "progress")
		if p.Done == 0 {
			_, err := tk.Wait(context.Background())
			t.Fatalf("progress channel closed: ticket resolved with %v", err)
		}
		if p.Done != i || p.Total != 3 {
			t.Fatalf("progress %+v, want %d/3", p, i)
		}
		step <- struct{}{}
	}
	if res, err := tk.Wait(context.Background()); err != nil || string(res) != "done" {
		t.Fatalf("%q %v", res, err)
	}
}

func TestRemoteClientGoneCancelsItsJobs(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	started, ended := make(chan struct{}, 1), make(chan error, 1)
	f.startWorker(map[string]worker.Handler{"wait": ctxObserver(started, ended)})
	c, err := dispatch.NewClient(f.addr, dispatch.WithBanIO(banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := c.Submit(context.Background(), dispatch.Job{Type: "wait"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "job start")
	_ = c.Close()
	if _, err := tk.Wait(context.Background()); err == nil {
		t.Fatal("a closed client's ticket resolved without error")
	}
	recv(t, ended, "the master cancels jobs of a caller that went away")
}

// TestRemoteCancelOnlyFromItsCaller: a cancel naming another connection's job is
// ignored; the job's own caller can still cancel it.
func TestRemoteCancelOnlyFromItsCaller(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	started, ended := make(chan struct{}, 1), make(chan error, 1)
	f.startWorker(map[string]worker.Handler{"wait": ctxObserver(started, ended)})
	owner := newClient(t, f.addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tk, err := owner.Submit(ctx, dispatch.Job{ID: "the-job", Type: "wait"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "job start")

	// Another connection names the job in a cancel. The master handles that
	// connection's messages in order, so once a blob upload sent behind the cancel is
	// answered, the cancel has been handled.
	raw, err := banio.NewClientIO(f.addr, banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- raw.RunForever() }()
	defer func() { _ = raw.Close(); <-runDone }()
	if err := raw.WriteMsg(&banio.IOMsg{Action: protocol.ActionCancel, Data: protocol.CancelMsg{ID: "the-job"}}); err != nil {
		t.Fatal(err)
	}
	key := raw.SetWait("", 1)
	if err := raw.Write(&banio.IOMsgRaw{Action: protocol.ActionBlobPut + key, Data: []byte("barrier")}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.WaitResult(context.Background(), key, 5*time.Second); err != nil {
		t.Fatalf("blob upload behind the cancel: %v", err)
	}
	// The cancel was handled; had it counted, the job would end soon after (the
	// master's reaction is asynchronous): give it a moment to show.
	select {
	case err := <-ended:
		t.Fatalf("a stranger's cancel ended the job: %v", err)
	case <-tk.Done():
		t.Fatal("a stranger's cancel resolved the job")
	case <-time.After(200 * time.Millisecond):
	}

	cancel()
	if _, err := tk.Wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("the owner's cancel: %v", err)
	}
	recv(t, ended, "handler cancelled by its owner")
}

// TestRemoteCallEndsWithItsContext: Client.Call watches its context itself (no
// AfterFunc per call): ending it returns the context's error at once and cancels the
// job on the master and its worker.
func TestRemoteCallEndsWithItsContext(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	started, ended := make(chan struct{}, 1), make(chan error, 1)
	f.startWorker(map[string]worker.Handler{"wait": ctxObserver(started, ended), "echo": echo}, worker.WithConcurrency(1))
	c := newClient(t, f.addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, "wait", nil)
		done <- err
	}()
	recv(t, started, "remote job start")
	cancel()
	if err := recv(t, done, "Call's return"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Call after its context ended: %v, want context.Canceled", err)
	}
	recv(t, ended, "handler cancelled through client → master → worker")
	// The Client goes on: the next call is answered.
	if res, err := c.Call(context.Background(), "echo", "next"); err != nil || string(res) != "next" {
		t.Fatalf("call after a cancelled one: %q, %v", res, err)
	}
}
