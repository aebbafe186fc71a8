package fleettest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/store"
	"github.com/banfleet/banfleet/worker"
	"github.com/cenkalti/backoff/v4"
)

// Fleet is a master and its workers running in the test's process.
type Fleet struct {
	t    testing.TB
	cfg  config
	addr string // the master's address; a restarted master listens on it again

	// mu protects the following fields.
	mu       sync.Mutex
	srv      *banio.ServerIO
	ln       *cutListener // srv's listener
	master   *dispatch.Master
	served   chan struct{}
	st       store.Store // the running master's store, nil for an in-memory master
	stOpened bool        // st came from cfg.openStore: close it after its master
	workers  []*Worker
	clients  []*dispatch.Client
	links    []*Link // of the LinkedClients
	closed   bool
}

// New starts a master and WithWorkers workers (1 by default) that serve handlers, and
// returns once every worker has registered. Close, registered with t.Cleanup, stops
// them all.
func New(t testing.TB, handlers map[string]worker.Handler, opts ...Option) *Fleet {
	t.Helper()
	cfg := config{workers: -1, timeout: DefaultTimeout}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.workers < 0 {
		cfg.workers = min(len(handlers), 1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fleettest: listen: %v", err)
	}
	f := &Fleet{t: t, cfg: cfg, addr: ln.Addr().String()}
	t.Cleanup(f.Close)
	if err := f.startMaster(ln); err != nil {
		t.Fatalf("fleettest: %v", err)
	}
	ws := make([]*Worker, cfg.workers)
	for i := range ws {
		ws[i] = f.startWorker(handlers, nil)
	}
	for _, w := range ws {
		w.awaitRegistered(t)
	}
	return f
}

// Master is the running master (a new one after RestartMaster).
func (f *Fleet) Master() *dispatch.Master {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.master
}

// Server is the running master's banio server.
func (f *Fleet) Server() *banio.ServerIO {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.srv
}

// Addr is the master's address on loopback, the same across RestartMaster.
func (f *Fleet) Addr() string { return f.addr }

// Workers lists the workers the fleet started, in order.
func (f *Fleet) Workers() []*Worker {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Worker(nil), f.workers...)
}

// WaitWorkers waits until at least n workers are registered with the master, and
// fails the test if they are not within the fleet's timeout.
func (f *Fleet) WaitWorkers(n int) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.timeout)
	defer cancel()
	if err := f.Master().WaitWorkers(ctx, n); err != nil {
		f.t.Fatalf("fleettest: %v", err)
	}
}

// Client connects a dispatch.Client to the master directly, with the fleet's banio
// and client options and then opts. The fleet closes it.
func (f *Fleet) Client(opts ...dispatch.Option) *dispatch.Client {
	f.t.Helper()
	return f.client(f.addr, opts)
}

// Link opens a new Link to the master, for a peer the test connects itself (a daemon
// it runs, a Client it makes with options of its own): the peer dials Link().Addr().
// Partition on such a link cuts the peer's connections, and refuses them while it
// holds (the peer sees them closed at once), since the link does not dial for it.
// The fleet closes it.
func (f *Fleet) Link() *Link {
	f.t.Helper()
	l, err := newProxyLink(f.addr)
	if err != nil {
		f.t.Fatalf("fleettest: %v", err)
	}
	f.mu.Lock()
	f.links = append(f.links, l)
	f.mu.Unlock()
	return l
}

// LinkedClient connects a dispatch.Client to the master through a Link of its own,
// which cuts the Client's connection alone (its dialer's: see Link). The fleet closes both.
func (f *Fleet) LinkedClient(opts ...dispatch.Option) (*dispatch.Client, *Link) {
	f.t.Helper()
	l := newLink(f.addr)
	f.mu.Lock()
	f.links = append(f.links, l)
	f.mu.Unlock()
	return f.client(l.Addr(), opts, l.dialer()), l
}

func (f *Fleet) client(addr string, opts []dispatch.Option, extra ...banio.Option) *dispatch.Client {
	f.t.Helper()
	bopts := append([]banio.Option{banio.WithHeartbeat(heartbeat, heartbeatTimeout), banio.WithReconnectBackoff(fastBackoff)}, f.cfg.banio...)
	bopts = append(bopts, extra...)
	all := append([]dispatch.Option{dispatch.WithBanIO(bopts...)}, f.cfg.clientOpts...)
	c, err := dispatch.NewClient(addr, append(all, opts...)...)
	if err != nil {
		f.t.Fatalf("fleettest: client: %v", err)
	}
	f.mu.Lock()
	f.clients = append(f.clients, c)
	f.mu.Unlock()
	return c
}

// StopMaster stops the master as a crash would: every connection is cut at once,
// abortively (nothing it had queued leaves), its server closes, then the Master, then
// the store if the fleet opened it. Workers and Clients
// keep trying to reconnect until StartMaster.
func (f *Fleet) StopMaster() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.stopMasterLocked(); err != nil {
		f.t.Errorf("fleettest: %v", err)
	}
}

// StartMaster starts a master again on the fleet's address (after StopMaster), on the
// same store (WithStore) or a store opened anew (WithStoreOpener); without either, on
// no store: a master that knows nothing of the jobs before it. opts are added to the
// fleet's master options for this master, as a restart with a changed configuration.
func (f *Fleet) StartMaster(opts ...dispatch.Option) {
	f.t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("fleettest: listen again on %s: %v", f.addr, err)
	}
	if err := f.startMaster(ln, opts...); err != nil {
		f.t.Fatalf("fleettest: %v", err)
	}
}

// RestartMaster is StopMaster then StartMaster(opts...): workers and Clients ride
// through to the new master on the same address.
func (f *Fleet) RestartMaster(opts ...dispatch.Option) {
	f.t.Helper()
	f.StopMaster()
	f.StartMaster(opts...)
}

// startMaster serves a new master on ln, with extra options.
func (f *Fleet) startMaster(ln net.Listener, extra ...dispatch.Option) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.master != nil {
		_ = ln.Close()
		return errors.New("StartMaster: the master is running (StopMaster first)")
	}
	if f.closed {
		_ = ln.Close()
		return errors.New("StartMaster: the fleet is closed")
	}
	st, opened := f.cfg.store, false
	if f.cfg.openStore != nil {
		var err error
		if st, err = f.cfg.openStore(); err != nil {
			_ = ln.Close()
			return fmt.Errorf("open the master's store: %w", err)
		}
		opened = true
	}
	bopts := append([]banio.Option{banio.WithHeartbeat(heartbeat, heartbeatTimeout)}, f.cfg.banio...)
	srv := banio.NewBanServer(f.addr, "fleettest", append(bopts, f.cfg.serverBanio...)...)
	mopts := append([]dispatch.Option{dispatch.WithRetryBackoff(time.Millisecond, 10*time.Millisecond)}, f.cfg.masterOpts...)
	mopts = append(mopts, extra...)
	var m *dispatch.Master
	if st != nil {
		var err error
		if m, err = dispatch.OpenMaster(srv, st, mopts...); err != nil {
			_ = ln.Close()
			_ = srv.Close()
			if opened {
				closeStore(st)
			}
			return fmt.Errorf("open the master: %w", err)
		}
	} else {
		m = dispatch.NewMaster(srv, mopts...)
	}
	if f.cfg.setup != nil {
		f.cfg.setup(srv)
	}
	served := make(chan struct{})
	cl := &cutListener{Listener: ln}
	go func() { defer close(served); _ = srv.Serve(cl) }()
	f.srv, f.ln, f.master, f.served, f.st, f.stOpened = srv, cl, m, served, st, opened
	return nil
}

// stopMasterLocked stops the running master, if any. f.mu must be held.
func (f *Fleet) stopMasterLocked() error {
	if f.master == nil {
		return nil
	}
	f.ln.cutAll() // before the server's Close, which would flush what is queued
	_ = f.srv.Close()
	var err error
	select {
	case <-f.served:
	case <-time.After(f.cfg.timeout):
		err = fmt.Errorf("the master's server did not stop within %v", f.cfg.timeout)
	}
	_ = f.master.Close()
	if f.stOpened {
		closeStore(f.st)
	}
	f.srv, f.ln, f.master, f.served, f.st, f.stOpened = nil, nil, nil, nil, nil, false
	return err
}

func closeStore(st store.Store) {
	if c, ok := st.(io.Closer); ok {
		_ = c.Close()
	}
}

// Close stops everything the fleet started, in order: the Clients, the workers
// (drained), the master, the links. New registers it with t.Cleanup; calling it
// before is allowed, and a second call does nothing.
func (f *Fleet) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	clients, workers, links := f.clients, f.workers, f.links
	f.clients, f.links = nil, nil
	f.mu.Unlock()
	for _, c := range clients {
		_ = c.Close()
	}
	// All drain at once: a partitioned worker's drain waits out its grace.
	runs := make([]*workerRun, len(workers))
	for i, w := range workers {
		if runs[i] = w.detach(); runs[i] != nil {
			runs[i].cancel()
		}
	}
	for i, w := range workers {
		if runs[i] != nil {
			_ = w.await(runs[i])
		}
	}
	f.mu.Lock()
	err := f.stopMasterLocked()
	f.mu.Unlock()
	if err != nil {
		f.t.Errorf("fleettest: %v", err)
	}
	for _, l := range links {
		l.close()
	}
	for _, w := range workers {
		w.link.close()
	}
}

// fastBackoff is the reconnect policy of the fleet's Clients: 5 ms growing to 50 ms,
// forever.
func fastBackoff() backoff.BackOff {
	return backoff.NewExponentialBackOff(backoff.WithInitialInterval(5*time.Millisecond),
		backoff.WithMaxInterval(50*time.Millisecond), backoff.WithMaxElapsedTime(0))
}
