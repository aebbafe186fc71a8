package fleettest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/worker"
	"github.com/cenkalti/backoff/v4"
)

// Worker is a worker of the fleet, reaching the master through a Link of its own.
type Worker struct {
	f        *Fleet
	handlers map[string]worker.Handler
	opts     []worker.Option // StartWorker's, after the fleet's
	name     string          // worker.WithName, kept across Restart
	link     *Link

	// mu protects the following fields.
	mu  sync.Mutex
	run *workerRun // the current run, nil once stopped or killed
}

// workerRun is one run of a worker: a worker.Worker and its Run, as one process's
// life; Restart starts another.
type workerRun struct {
	w      *worker.Worker
	cancel context.CancelFunc
	killed atomic.Bool   // its reconnect policy gives up: Run ends as on a dead link
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
	before int           // registrations of its id the master had before it started
}

// StartWorker starts one more worker with handlers, the fleet's worker options and
// opts, and returns once the master has registered it.
func (f *Fleet) StartWorker(handlers map[string]worker.Handler, opts ...worker.Option) *Worker {
	f.t.Helper()
	w := f.startWorker(handlers, opts)
	w.awaitRegistered(f.t)
	return w
}

func (f *Fleet) startWorker(handlers map[string]worker.Handler, opts []worker.Option) *Worker {
	f.t.Helper()
	l := newLink(f.addr)
	f.mu.Lock()
	closed := f.closed
	w := &Worker{f: f, handlers: handlers, opts: append(append([]worker.Option(nil), f.cfg.workerOpts...), opts...), link: l,
		name: fmt.Sprintf("fleettest-%d", len(f.workers)+1)}
	if !closed {
		f.workers = append(f.workers, w)
	}
	f.mu.Unlock()
	if closed {
		f.t.Fatal("fleettest: StartWorker on a closed fleet")
	}
	w.start()
	return w
}

// start begins a new run.
func (w *Worker) start() {
	r := &workerRun{done: make(chan struct{})}
	bopts := append([]banio.Option{banio.WithHeartbeat(heartbeat, heartbeatTimeout)}, w.f.cfg.banio...)
	// Last, so that they hold: Kill and Partition work through them.
	bopts = append(bopts, banio.WithReconnectBackoff(r.backoff), w.link.dialer())
	opts := append([]worker.Option{worker.WithName(w.name), worker.WithDrainGrace(drainGrace)}, w.opts...)
	opts = append(opts, worker.WithBanIO(bopts...), worker.WithConnectBackoff(r.backoff))
	r.w = worker.New(w.link.Addr(), opts...)
	for typ, h := range w.handlers {
		r.w.Handle(typ, h)
	}
	r.before = w.f.registrations(r.w.ID())
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	w.mu.Lock()
	w.run = r
	w.mu.Unlock()
	go func() {
		defer close(r.done)
		r.err = r.w.Run(ctx)
	}()
}

// backoff is the run's reconnect policy: fast, and given up once the run is killed.
func (r *workerRun) backoff() backoff.BackOff {
	return &killable{BackOff: fastBackoff(), killed: &r.killed}
}

// killable is a reconnect policy that stops once killed is set.
type killable struct {
	backoff.BackOff
	killed *atomic.Bool
}

func (k *killable) NextBackOff() time.Duration {
	if k.killed.Load() {
		return backoff.Stop
	}
	return k.BackOff.NextBackOff()
}

// Worker is the running worker.Worker (a new one after Restart), nil once stopped.
func (w *Worker) Worker() *worker.Worker {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.run == nil {
		return nil
	}
	return w.run.w
}

// ID is the running worker's id, as the master lists it ("" once stopped).
func (w *Worker) ID() string {
	if ww := w.Worker(); ww != nil {
		return ww.ID()
	}
	return ""
}

// Link is the worker's way to the master.
func (w *Worker) Link() *Link { return w.link }

// Cut cuts the worker's connection once; it reconnects, and the master takes the
// jobs it was running for lost (unless the worker re-attaches them in time).
func (w *Worker) Cut() { w.link.Cut() }

// Partition cuts the worker off from the master until Partition(false).
func (w *Worker) Partition(on bool) { w.link.Partition(on) }

// Stop drains the worker as a SIGTERM would (worker.Run's shutdown) and returns what
// Run returned. It fails the test if Run does not return within the fleet's timeout.
func (w *Worker) Stop() error {
	w.f.t.Helper()
	r := w.detach()
	if r == nil {
		return nil
	}
	r.cancel()
	return w.await(r)
}

// Kill ends the worker as a crash would: its connection drops at once, its running
// jobs' contexts are cancelled and nothing is handed back or drained; the master
// takes its jobs for lost. It fails the test if Run does not return within the
// fleet's timeout (a handler that ignores its context keeps it running).
func (w *Worker) Kill() {
	w.f.t.Helper()
	r := w.detach()
	if r == nil {
		return
	}
	r.killed.Store(true)
	w.link.Partition(true)
	_ = w.await(r)
	r.cancel()
}

// Restart kills the worker if it runs and starts it again, as a new process: the same
// handlers and options, a new id (unless worker.WithID gave one). It returns once the
// master has registered it.
func (w *Worker) Restart() {
	w.f.t.Helper()
	w.Kill()
	w.link.Partition(false)
	w.start()
	w.awaitRegistered(w.f.t)
}

// Done is closed when the current run's Run has returned (at once when none runs).
func (w *Worker) Done() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.run == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return w.run.done
}

// detach takes the current run away, so that only one caller stops it.
func (w *Worker) detach() *workerRun {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.run
	w.run = nil
	return r
}

// await waits for r's Run to return, bounded by the fleet's timeout.
func (w *Worker) await(r *workerRun) error {
	w.f.t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(w.f.cfg.timeout):
		w.f.t.Errorf("fleettest: worker %s did not stop within %v (a handler that ignores its context?)", r.w.ID(), w.f.cfg.timeout)
		return fmt.Errorf("fleettest: worker %s did not stop", r.w.ID())
	}
}

// awaitRegistered waits until the master has registered the current run's worker once
// more than before it started, bounded by the fleet's timeout: a worker whose Run ends
// first fails the test with Run's error.
func (w *Worker) awaitRegistered(t testing.TB) {
	t.Helper()
	w.mu.Lock()
	r := w.run
	w.mu.Unlock()
	if r == nil {
		t.Fatal("fleettest: the worker is not running")
	}
	timeout := time.NewTimer(w.f.cfg.timeout)
	defer timeout.Stop()
	for {
		m := w.f.Master()
		if m == nil {
			t.Fatal("fleettest: waiting for a worker to register while the master is stopped")
		}
		changed := m.WorkersChanged()
		if w.f.registrations(r.w.ID()) > r.before {
			return
		}
		select {
		case <-changed:
		case <-r.done:
			t.Fatalf("fleettest: worker %s ended before it registered: %v", r.w.ID(), r.err)
		case <-timeout.C:
			t.Fatalf("fleettest: worker %s did not register within %v", r.w.ID(), w.f.cfg.timeout)
		}
	}
}

// registrations counts the running master's registrations of worker id (a reconnect
// may add one until the old connection's loss is noticed).
func (f *Fleet) registrations(id string) int {
	m := f.Master()
	if m == nil {
		return 0
	}
	n := 0
	for _, w := range m.Workers() {
		if w.ID == id {
			n++
		}
	}
	return n
}
