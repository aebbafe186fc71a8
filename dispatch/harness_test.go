package dispatch_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/worker"
)

// fleet is a master on loopback plus the workers a test starts.
type fleet struct {
	t      testing.TB
	srv    *banio.ServerIO
	master *dispatch.Master
	addr   string
	wg     sync.WaitGroup
}

// newFleet starts a master. Heartbeats are short so lost workers are noticed fast.
func newFleet(t testing.TB, opts ...dispatch.Option) *fleet {
	t.Helper()
	return newFleetIO(t, nil, opts...)
}

// newFleetIO is newFleet with banio options for the master's server (frame limits…).
func newFleetIO(t testing.TB, bopts []banio.Option, opts ...dispatch.Option) *fleet {
	t.Helper()
	bopts = append([]banio.Option{banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond)}, bopts...)
	srv := banio.NewBanServer("", "test-master", bopts...)
	opts = append([]dispatch.Option{dispatch.WithRetryBackoff(time.Millisecond, 10*time.Millisecond)}, opts...)
	m := dispatch.NewMaster(srv, opts...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, srv: srv, master: m, addr: ln.Addr().String()}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = m.Close()
		_ = srv.Close()
		f.wg.Wait()
	})
	return f
}

// runningWorker is a worker started by a test, with a way to stop it.
type runningWorker struct {
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
}

// stop drains the worker and waits for Run to return.
func (rw *runningWorker) stop() error {
	rw.cancel()
	select {
	case <-rw.done:
		return rw.err
	case <-time.After(10 * time.Second):
		return context.DeadlineExceeded
	}
}

// startWorker runs a worker with handlers until the test ends; it waits until the
// master has registered it.
func (f *fleet) startWorker(addr string, handlers map[string]worker.Handler, opts ...worker.Option) *runningWorker {
	f.t.Helper()
	if addr == "" {
		addr = f.addr
	}
	opts = append([]worker.Option{worker.WithBanIO(
		banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond),
		banio.WithReconnectBackoff(fastBackoff),
	), worker.WithDrainGrace(2 * time.Second)}, opts...)
	w := worker.New(addr, opts...)
	for typ, h := range handlers {
		w.Handle(typ, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rw := &runningWorker{w: w, cancel: cancel, done: make(chan struct{})}
	before := f.registered(w.ID())
	go func() {
		defer close(rw.done)
		rw.err = w.Run(ctx)
	}()
	f.t.Cleanup(func() { _ = rw.stop() })
	f.awaitWorkers("worker registered", func() bool { return f.registered(w.ID()) > before })
	return rw
}

// awaitWorkers waits until cond, which reads the master's workers, holds: it looks
// again at every registration or loss of a worker, for 10 s at most.
func (f *fleet) awaitWorkers(what string, cond func() bool) {
	f.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		changed := f.master.WorkersChanged()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			f.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// registered counts the master's registrations of worker id (a reconnect adds one).
func (f *fleet) registered(id string) int {
	n := 0
	for _, w := range f.master.Workers() {
		if w.ID == id {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds, failing the test after 10 s. Used only where no
// event exists to wait on (the master's registry).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func echo(ctx context.Context, job *worker.Job) (any, error) { return job.Payload, nil }

// mixedHandlers serves "ok" (echo), "fail" (a handler error) and "wait" (signals
// started, then runs until its context ends): the workload of the tests that count
// outcomes.
func mixedHandlers(started chan<- struct{}) map[string]worker.Handler {
	return map[string]worker.Handler{
		"ok":   echo,
		"fail": func(context.Context, *worker.Job) (any, error) { return nil, errors.New("no") },
		"wait": func(ctx context.Context, _ *worker.Job) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}
}
