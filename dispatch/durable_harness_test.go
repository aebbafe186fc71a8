package dispatch_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/fleettest"
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

func (s *crashableStore) ApplyLater(then func(error), recs ...store.Record) error {
	if s.crashed.Load() {
		return errCrashed
	}
	return s.Bolt.ApplyLater(then, recs...)
}

// durableFleet is a durable master on loopback (a bolt file in the test's temp dir)
// that a test can kill and start again on the same address, plus workers.
type durableFleet struct {
	*fleet
	path string

	mu    sync.Mutex
	store *crashableStore // the running master's store
}

// newDurableFleet starts a durable master.
func newDurableFleet(t *testing.T, opts ...dispatch.Option) *durableFleet {
	t.Helper()
	d := &durableFleet{path: filepath.Join(t.TempDir(), "master.db")}
	ft := fleettest.New(t, nil, fleettest.WithMasterOptions(opts...), fleettest.WithStoreOpener(d.open))
	d.fleet = &fleet{Fleet: ft, t: t, master: ft.Master(), addr: ft.Addr()}
	return d
}

// open opens the store file for the next master (fleettest closes it after it).
func (d *durableFleet) open() (store.Store, error) {
	b, err := store.OpenBolt(d.path)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.store = &crashableStore{Bolt: b}
	return d.store, nil
}

// kill kills the master as a crash would: its store takes nothing more, then its
// server and every connection close, and the store is closed under it. The dead
// Master is closed only to stop its timers (it can record nothing).
func (d *durableFleet) kill() {
	d.mu.Lock()
	d.store.crashed.Store(true)
	d.mu.Unlock()
	d.StopMaster()
}

// restart starts a new master on the same store file and address, with opts added to
// the fleet's master options.
func (d *durableFleet) restart(opts ...dispatch.Option) {
	d.StartMaster(opts...)
	d.master = d.Master()
}

// storeStats reports the live store's counters.
func (d *durableFleet) storeStats() store.Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.store.Stats()
}
