package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/store"
	"github.com/banfleet/banfleet/worker"
	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// dispatchSystem is dispatch-w1 / dispatch-w4: a master (banio.ServerIO +
// dispatch.Master), `workers` workers with 64 slots each and an echo
// handler, and ONE remote dispatch.Client shared by all callers. A call is
// client.Call(ctx, "echo", payload): caller → master → worker → master →
// caller, two hops through the master, like nats-w1/nats-w4's two hops
// through the broker.
type dispatchSystem struct {
	workers int
	durable bool // dispatch-durable-w4: the master keeps its jobs in a bolt store
	metrics bool // dispatch-w4-metrics: master and workers record into a real SDK provider

	meters *sdkmetric.MeterProvider // with metrics: a Prometheus exporter on its own registry
	reg    *prometheus.Registry

	dir   string      // the store's temp dir
	store *store.Bolt // the durable master's store

	srv    *banServer
	master *dispatch.Master
	pool   *echoWorkers
	client *dispatch.Client
}

// dispatchConcurrency is every worker's capacity: enough that 64 callers
// never queue at the master even with one worker.
const dispatchConcurrency = 64

func newDispatch(workers int) *dispatchSystem { return &dispatchSystem{workers: workers} }

// newDurableDispatch is dispatch-w<workers> with a durable master: a bolt file in a
// temp dir, fsynced per commit as cmd/master runs by default.
func newDurableDispatch(workers int) *dispatchSystem {
	return &dispatchSystem{workers: workers, durable: true}
}

// newMeteredDispatch is dispatch-w<workers> with metrics on, as cmd/master and
// cmd/worker run: an OpenTelemetry SDK MeterProvider with a Prometheus exporter
// registered, given to the master and every worker. Nothing scrapes it during the
// window; Close gathers it once, so that the readings are real.
func newMeteredDispatch(workers int) *dispatchSystem {
	return &dispatchSystem{workers: workers, metrics: true}
}

// Start starts the master, the workers and the client, and waits until the
// master knows every worker.
func (d *dispatchSystem) Start(ctx context.Context) error {
	srv := banio.NewBanServer(loopback, "bench-master")
	var mopts []dispatch.Option
	var wopts []worker.Option
	if d.metrics {
		d.reg = prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(d.reg), otelprom.WithoutScopeInfo())
		if err != nil {
			return err
		}
		d.meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
		mopts = append(mopts, dispatch.WithMeterProvider(d.meters))
		wopts = append(wopts, worker.WithMeterProvider(d.meters))
	}
	if d.durable {
		dir, err := os.MkdirTemp("", "bench-durable-")
		if err != nil {
			return err
		}
		d.dir = dir
		if d.store, err = store.OpenBolt(filepath.Join(dir, "master.db")); err != nil {
			return err
		}
		if d.master, err = dispatch.OpenMaster(srv, d.store, mopts...); err != nil {
			return err
		}
	} else {
		d.master = dispatch.NewMaster(srv, mopts...)
	}
	bs, err := serveBanio(srv)
	if err != nil {
		return err
	}
	d.srv = bs

	d.pool = startEchoWorkers(bs.addr, d.workers, wopts...)
	waitErr := make(chan error, 1)
	go func() { waitErr <- d.master.WaitWorkers(ctx, d.workers) }()
	select {
	case err := <-waitErr:
		if err != nil {
			return err
		}
	case err := <-d.pool.ended():
		d.pool.gone()
		return fmt.Errorf("worker ended before registering: %v", err)
	}
	client, err := dispatch.NewClient(bs.addr)
	if err != nil {
		return fmt.Errorf("dispatch client: %w", err)
	}
	d.client = client
	return nil
}

// NewCaller returns a Caller on the shared client.
func (d *dispatchSystem) NewCaller() (Caller, error) {
	if d.client == nil {
		return nil, errors.New("dispatch: not started")
	}
	return &dispatchCaller{client: d.client}, nil
}

// Close closes the client, drains the workers, then the master and its
// server.
func (d *dispatchSystem) Close() error {
	var errs []error
	if d.client != nil {
		errs = append(errs, d.client.Close())
	}
	errs = append(errs, d.pool.close()...)
	if d.master != nil {
		errs = append(errs, d.master.Close())
	}
	if d.srv != nil {
		errs = append(errs, d.srv.close())
	}
	if d.reg != nil {
		if _, err := d.reg.Gather(); err != nil { // the one scrape
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
		errs = append(errs, d.meters.Shutdown(context.Background()))
	}
	if d.store != nil {
		reportStore(d.store.Stats(), d.master.Stats().Done)
		errs = append(errs, d.store.Close())
	}
	if d.dir != "" {
		errs = append(errs, os.RemoveAll(d.dir))
	}
	return errors.Join(errs...)
}

// dispatchCaller is one caller on the shared dispatch.Client.
type dispatchCaller struct{ client *dispatch.Client }

// Call runs one echo job on the fleet.
func (c *dispatchCaller) Call(ctx context.Context, payload []byte) ([]byte, error) {
	return c.client.Call(ctx, "echo", payload)
}

// Interface checks.
var _ System = (*dispatchSystem)(nil)

// reportStore prints what a durable master's store did over one repeat: the figures
// the durability targets are read against (fsyncs per job, records per commit).
func reportStore(s store.Stats, jobs uint64) {
	if jobs == 0 || s.Commits == 0 {
		return
	}
	fmt.Fprintf(os.Stderr, "  store: %d jobs, %d records in %d commits (%.1f records/commit, max %d), %.3f fsyncs/job, %.1f µs committing/job, file %d KiB\n",
		jobs, s.Records, s.Commits, s.MeanBatch, s.MaxBatch, float64(s.Fsyncs)/float64(jobs),
		float64(s.CommitTime.Microseconds())/float64(jobs), s.FileBytes>>10)
}
