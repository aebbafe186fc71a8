package dispatch_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/store"
)

// errCrashed is what a crashed store answers: the master that used it is dead.
var errCrashed = errors.New("test: the master crashed")

// crashableStore is a real bolt store that can be made to die with its master: after
// crash it takes no record (those still on their way are committed, as the disk would
// have them), so the dead master can change nothing the next one reads.
type crashableStore struct {
	*store.Bolt
	crashed atomic.Bool
}

func (s *crashableStore) Apply(ctx context.Context, recs ...store.Record) error {
	if s.crashed.Load() {
		return errCrashed
	}
	return s.Bolt.Apply(ctx, recs...)
}

func (s *crashableStore) ApplyThen(then func(error), recs ...store.Record) error {
	if s.crashed.Load() {
		return errCrashed
	}
	return s.Bolt.ApplyThen(then, recs...)
}

// durableFleet is a durable master on loopback (a bolt file in the test's temp dir)
// that a test can kill and start again on the same address, plus workers.
type durableFleet struct {
	*fleet
	path   string
	store  *crashableStore
	opts   []dispatch.Option
	served chan struct{}
	mu     sync.Mutex
}

// newDurableFleet starts a durable master.
func newDurableFleet(t *testing.T, opts ...dispatch.Option) *durableFleet {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &durableFleet{fleet: &fleet{t: t, addr: ln.Addr().String()}, path: filepath.Join(t.TempDir(), "master.db"), opts: opts}
	d.start(ln)
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		_ = d.master.Close()
		_ = d.srv.Close()
		<-d.served
		_ = d.store.Bolt.Close()
	})
	return d
}

// start opens the store and a master on it, serving ln.
func (d *durableFleet) start(ln net.Listener) {
	t := d.t
	t.Helper()
	b, err := store.OpenBolt(d.path)
	if err != nil {
		t.Fatal(err)
	}
	srv := banio.NewBanServer("", "durable-master", banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond))
	opts := append([]dispatch.Option{dispatch.WithRetryBackoff(time.Millisecond, 10*time.Millisecond)}, d.opts...)
	cs := &crashableStore{Bolt: b}
	m, err := dispatch.OpenMaster(srv, cs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	d.srv, d.master, d.store, d.served = srv, m, cs, served
}

// kill kills the master as a crash would: its store takes nothing more, its server
// and every connection close, and no flush or Close of the Master happens before the
// store is closed under it. The dead Master is closed afterwards only to stop its
// timers (it can record nothing).
func (d *durableFleet) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.store.crashed.Store(true)
	_ = d.srv.Close()
	<-d.served
	if err := d.store.Bolt.Close(); err != nil {
		d.t.Fatal(err)
	}
	_ = d.master.Close()
}

// restart starts a new master on the same store file and address.
func (d *durableFleet) restart() {
	d.mu.Lock()
	defer d.mu.Unlock()
	ln, err := net.Listen("tcp", d.addr)
	if err != nil {
		d.t.Fatal(err)
	}
	d.start(ln)
}

// storeStats reports the live store's counters.
func (d *durableFleet) storeStats() store.Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.store.Stats()
}
