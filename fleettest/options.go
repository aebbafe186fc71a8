package fleettest

import (
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/store"
	"github.com/banfleet/banfleet/worker"
)

// DefaultTimeout bounds every wait of a fleet (WithTimeout): for workers to register,
// a worker to stop, the master to close.
const DefaultTimeout = 10 * time.Second

// Test timings of the fleet's parts (see the package doc).
const (
	heartbeat        = 50 * time.Millisecond
	heartbeatTimeout = 400 * time.Millisecond
	drainGrace       = 2 * time.Second
)

// Option configures a Fleet.
type Option func(*config)

type config struct {
	workers     int
	masterOpts  []dispatch.Option
	workerOpts  []worker.Option
	clientOpts  []dispatch.Option
	banio       []banio.Option
	serverBanio []banio.Option
	store       store.Store
	openStore   func() (store.Store, error)
	timeout     time.Duration
	setup       func(*banio.ServerIO)
}

// WithWorkers sets how many workers New starts with the handlers it is given (default
// 1 when there are handlers, 0 without).
func WithWorkers(n int) Option { return func(c *config) { c.workers = max(n, 0) } }

// WithMasterOptions passes options to the master (dispatch.NewMaster, OpenMaster).
func WithMasterOptions(opts ...dispatch.Option) Option {
	return func(c *config) { c.masterOpts = append(c.masterOpts, opts...) }
}

// WithWorkerOptions passes options to every worker the fleet starts, before those
// given to StartWorker.
func WithWorkerOptions(opts ...worker.Option) Option {
	return func(c *config) { c.workerOpts = append(c.workerOpts, opts...) }
}

// WithClientOptions passes options to every Client the fleet makes, before those
// given to Client.
func WithClientOptions(opts ...dispatch.Option) Option {
	return func(c *config) { c.clientOpts = append(c.clientOpts, opts...) }
}

// WithBanIO passes banio options to every part: the master's server, the workers and
// the Clients; what they must agree on, such as banio.WithToken, banio.WithAESKey or
// banio.WithMaxFrameSize.
func WithBanIO(opts ...banio.Option) Option {
	return func(c *config) { c.banio = append(c.banio, opts...) }
}

// WithServerBanIO passes banio options to the master's server only.
func WithServerBanIO(opts ...banio.Option) Option {
	return func(c *config) { c.serverBanio = append(c.serverBanio, opts...) }
}

// WithStore makes the master durable on st (dispatch.OpenMaster). RestartMaster opens
// the next master on the same st. The fleet does not close st.
func WithStore(st store.Store) Option { return func(c *config) { c.store = st } }

// WithStoreOpener makes the master durable on a store that open gives at every start
// of a master: once in New and once per RestartMaster (StartMaster). The fleet closes
// each store open gave (if it has a Close method) after its master, and so a crashed
// master's store can be reopened from its file, as a restarted process would. A
// store.OpenBolt of a file in t.TempDir() is the usual one.
func WithStoreOpener(open func() (store.Store, error)) Option {
	return func(c *config) { c.openStore = open }
}

// WithTimeout bounds every wait of the fleet (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithServerSetup calls setup with each master's server once the master is set up on
// it and before it serves: a test can wrap srv.InitConn there, to see or change what
// every new connection gets (a handler replaced, a connection captured).
func WithServerSetup(setup func(srv *banio.ServerIO)) Option {
	return func(c *config) { c.setup = setup }
}
