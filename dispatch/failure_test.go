package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestLostWorkerRedispatchesAndDropsZombieReply(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	zombie := make(chan *worker.Job, 4)
	zombieRelease := make(chan struct{})
	zw := f.startWorker(map[string]worker.Handler{"job": func(ctx context.Context, j *worker.Job) (any, error) {
		zombie <- j
		<-zombieRelease // keeps running after its connection is cut, like a partitioned worker
		return "from-zombie", nil
	}}, worker.WithID("zombie"))

	tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "job"})
	if err != nil {
		t.Fatal(err)
	}
	first := recv(t, zombie, "first attempt")
	if first.Attempt != 1 {
		t.Fatalf("first attempt = %d", first.Attempt)
	}
	healthy := make(chan *worker.Job, 1)
	zw.Partition(true) // the zombie cannot come back before the job moved on
	f.startWorker(map[string]worker.Handler{"job": func(ctx context.Context, j *worker.Job) (any, error) {
		healthy <- j
		return fmt.Sprintf("attempt-%d", j.Attempt), nil
	}}, worker.WithID("healthy"))
	second := recv(t, healthy, "re-dispatch")
	if second.Attempt != 2 || second.ID != first.ID {
		t.Fatalf("re-dispatch: id %s attempt %d, want %s attempt 2", second.ID, second.Attempt, first.ID)
	}
	res, err := tk.Wait(context.Background())
	if err != nil || string(res) != "attempt-2" {
		t.Fatalf("result %q %v", res, err)
	}
	// The zombie comes back and answers attempt 1: its reply must not count.
	zw.Partition(false)
	f.awaitWorkers("zombie reconnected", func() bool { return f.registered("zombie") == 1 })
	close(zombieRelease)
	if s := f.master.Stats(); s.Done != 1 || s.Retried != 1 || s.Failed != 0 {
		t.Fatalf("Stats = %+v, want 1 done, 1 retried", s)
	}
}

func TestLostWorkerExhaustsAttempts(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	g := newGate()
	fw := f.startWorker(map[string]worker.Handler{"job": g.handle}, worker.WithID("flaky"))
	tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "job", MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		j := recv(t, g.started, "attempt")
		if j.Attempt != attempt {
			t.Fatalf("attempt %d, want %d", j.Attempt, attempt)
		}
		fw.Cut()
	}
	_, err = tk.Wait(context.Background())
	if !errors.Is(err, dispatch.ErrWorkerLost) || !strings.Contains(err.Error(), "flaky") {
		t.Fatalf("err = %v, want ErrWorkerLost naming the worker", err)
	}
}

func TestHandlerErrors(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	attempts := make(chan int, 10)
	f.startWorker(map[string]worker.Handler{
		"fail": func(ctx context.Context, j *worker.Job) (any, error) {
			return nil, &worker.Error{Code: "E_BAD", Err: errors.New("bad input")}
		},
		"flaky": func(ctx context.Context, j *worker.Job) (any, error) {
			attempts <- j.Attempt
			if j.Attempt < 3 {
				return nil, worker.Retryable(errors.New("try again"))
			}
			return "ok at 3", nil
		},
		"always": func(ctx context.Context, j *worker.Job) (any, error) {
			return nil, worker.Retryable(errors.New("never works"))
		},
		"panic": func(ctx context.Context, j *worker.Job) (any, error) { panic("kaboom") },
		"echo":  echo,
	})
	ctx := context.Background()

	_, err := f.master.Call(ctx, "fail", nil)
	var re *dispatch.RemoteError
	if !errors.As(err, &re) || re.Code != "E_BAD" || re.Retryable || !strings.Contains(re.Message, "bad input") || re.WorkerID == "" {
		t.Fatalf("non-retryable failure: %v (%+v)", err, re)
	}
	if s := f.master.Stats(); s.Retried != 0 {
		t.Fatalf("a non-retryable failure was retried: %+v", s)
	}

	res, err := f.master.Call(ctx, "flaky", nil)
	if err != nil || string(res) != "ok at 3" {
		t.Fatalf("retryable failure: %q %v", res, err)
	}
	for want := 1; want <= 3; want++ {
		if got := <-attempts; got != want {
			t.Fatalf("attempt %d, want %d", got, want)
		}
	}

	tk, _ := f.master.Submit(ctx, dispatch.Job{Type: "always", MaxAttempts: 2})
	_, err = tk.Wait(ctx)
	if !errors.As(err, &re) || !re.Retryable || re.Attempt != 2 {
		t.Fatalf("retryable until MaxAttempts: %v", err)
	}

	_, err = f.master.Call(ctx, "panic", nil)
	if !errors.As(err, &re) || re.Code != "panic" || !strings.Contains(re.Message, "kaboom") {
		t.Fatalf("panic: %v", err)
	}
	if res, err := f.master.Call(ctx, "echo", "still alive"); err != nil || string(res) != "still alive" {
		t.Fatalf("worker after a panic: %q %v", res, err)
	}
}

// ctxObserver is a handler that waits for its context and reports why it ended.
func ctxObserver(started chan<- struct{}, ended chan<- error) worker.Handler {
	return func(ctx context.Context, j *worker.Job) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		ended <- context.Cause(ctx)
		return nil, ctx.Err()
	}
}

func TestTimeoutAndCancelReachTheWorker(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	started, ended := make(chan struct{}, 2), make(chan error, 2)
	f.startWorker(map[string]worker.Handler{"wait": ctxObserver(started, ended)})

	tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "wait", Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "job start")
	if _, err := tk.Wait(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v, want DeadlineExceeded", err)
	}
	recv(t, ended, "handler context ended by the deadline")

	ctx, cancel := context.WithCancel(context.Background())
	tk, err = f.master.Submit(ctx, dispatch.Job{Type: "wait"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "job start")
	cancel()
	if _, err := tk.Wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v, want Canceled", err)
	}
	if cause := recv(t, ended, "handler cancelled by the master"); cause == nil {
		t.Fatal("handler context not cancelled")
	}
	if s := f.master.Stats(); s.Retried != 0 || s.Failed != 0 || s.TimedOut != 1 || s.Cancelled != 1 {
		t.Fatalf("Stats %+v: want 1 timed out and 1 cancelled, not failed nor retried", s)
	}
}

// TestCloseCancelsRunningJobs: Master.Close fails a running job with ErrClosed and
// stops its handler on the worker.
func TestCloseCancelsRunningJobs(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	started, ended := make(chan struct{}, 1), make(chan error, 1)
	f.startWorker(map[string]worker.Handler{"wait": ctxObserver(started, ended)})

	tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "wait"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "job start")
	if err := f.master.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Wait(context.Background()); !errors.Is(err, dispatch.ErrClosed) {
		t.Fatalf("running job after Close: %v, want ErrClosed", err)
	}
	if cause := recv(t, ended, "handler cancelled by the closing master"); cause == nil {
		t.Fatal("handler context not cancelled")
	}
}

// TestProgressReachesTicketWithoutBlocking: a handler's reports never stall it, and
// those sent before its result reach the ticket before the result resolves it, for a
// local and a remote submitter alike.
func TestProgressReachesTicketWithoutBlocking(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	f.startWorker(map[string]worker.Handler{"steps": func(ctx context.Context, j *worker.Job) (any, error) {
		for i := int64(1); i <= 1000; i++ { // nobody reads most of these: the job must not stall
			j.Progress(i, 1000, "step")
		}
		return "done", nil
	}})
	for name, sub := range map[string]dispatch.Submitter{"local": f.master, "remote": newClient(t, f.addr)} {
		tk, err := sub.Submit(context.Background(), dispatch.Job{Type: "steps"})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := tk.Wait(context.Background()); err != nil || string(res) != "done" {
			t.Fatalf("%s: %q %v", name, res, err)
		}
		var last dispatch.Progress
		n := 0
		for p := range tk.Progress() { // closed on resolution
			last, n = p, n+1
		}
		if n == 0 || n > dispatch.DefaultProgressBuf || last.Total != 1000 || last.Message != "step" || last.WorkerID == "" {
			t.Fatalf("%s: progress: %d reports, last %+v", name, n, last)
		}
		if last.Done != 1000 {
			t.Fatalf("%s: the last report before the result is %d/1000, want the handler's last", name, last.Done)
		}
	}
}

func TestDrainFinishesRunningJobs(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	g := newGate()
	drained := f.startWorker(map[string]worker.Handler{"job": g.handle}, worker.WithID("draining"), worker.WithDrainGrace(10*time.Second))
	tk, _ := f.master.Submit(context.Background(), dispatch.Job{Type: "job"})
	recv(t, g.started, "job start")
	stopped := make(chan error, 1)
	go func() { stopped <- drained.Stop() }()
	waitFor(t, "master sees the drain", func() bool {
		ws := f.master.Workers()
		return len(ws) == 1 && ws[0].Draining
	})
	other := f.startWorker(map[string]worker.Handler{"job": echo}, worker.WithID("other"))
	_ = other
	if res, err := f.master.Call(context.Background(), "job", "new"); err != nil || string(res) != "new" {
		t.Fatalf("a new job during the drain went to %q %v, want the other worker", res, err)
	}
	close(g.release)
	if res, err := tk.Wait(context.Background()); err != nil || string(res) != "released" {
		t.Fatalf("running job during drain: %q %v", res, err)
	}
	if err := recv(t, stopped, "Run to return"); err != nil {
		t.Fatalf("Run after drain: %v", err)
	}
}

func TestDrainHandsBackWithoutSpendingAttempts(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	g := newGate()
	drained := f.startWorker(map[string]worker.Handler{"job": g.handle}, worker.WithDrainGrace(50*time.Millisecond))
	tk, _ := f.master.Submit(context.Background(), dispatch.Job{Type: "job", MaxAttempts: 1})
	recv(t, g.started, "job start")
	if err := drained.Stop(); err != nil {
		t.Fatal(err)
	}
	f.startWorker(map[string]worker.Handler{"job": func(ctx context.Context, j *worker.Job) (any, error) {
		return fmt.Sprintf("attempt %d", j.Attempt), nil
	}})
	res, err := tk.Wait(context.Background())
	if err != nil || string(res) != "attempt 2" {
		t.Fatalf("handed-back job with MaxAttempts 1: %q %v", res, err)
	}
}
