package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/worker"
	"go.opentelemetry.io/otel/trace"
)

// embeddedFleet is a master and its workers in this process, talking over loopback
// TCP exactly as separate machines would.
type embeddedFleet struct {
	srv     *banio.ServerIO
	master  *dispatch.Master
	addr    string
	workers int

	cancel    context.CancelFunc // stops the workers
	workerErr chan error         // one value per worker when its Run returns
	serveErr  chan error
}

// registerTimeout bounds the wait for the in-process workers to register.
const registerTimeout = 10 * time.Second

// startEmbedded serves a master on 127.0.0.1 (a free port) and runs n workers on
// it, each handling the backtest job type with handler and running up to
// GOMAXPROCS/n jobs at once (at least one). It returns once every worker has
// registered, so the sweep spreads over all of them from the first job.
func startEmbedded(ctx context.Context, n int, handlers map[string]worker.Handler, bopts []banio.Option, log *slog.Logger, tp trace.TracerProvider) (*embeddedFleet, error) {
	if n < 1 {
		return nil, fmt.Errorf("-workers must be at least 1, not %d", n)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := banio.NewBanServer(ln.Addr().String(), "backtest", append(bopts, banio.WithLogger(log))...)
	f := &embeddedFleet{
		srv:       srv,
		master:    dispatch.NewMaster(srv, dispatch.WithLogger(log), dispatch.WithTracerProvider(tp)),
		addr:      ln.Addr().String(),
		workers:   n,
		workerErr: make(chan error, n),
		serveErr:  make(chan error, 1),
	}
	go func() { f.serveErr <- srv.Serve(ln) }()

	wctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	concurrency := max(1, runtime.GOMAXPROCS(0)/n)
	for i := range n {
		w := worker.New(f.addr,
			worker.WithName(fmt.Sprintf("embedded-%d", i+1)),
			worker.WithConcurrency(concurrency),
			worker.WithBanIO(bopts...),
			worker.WithLogger(log),
			worker.WithDrainGrace(time.Second),
			worker.WithTracerProvider(tp))
		for typ, h := range handlers {
			w.Handle(typ, h)
		}
		go func() { f.workerErr <- w.Run(wctx) }()
	}
	if err := f.awaitWorkers(ctx); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// awaitWorkers waits until every worker has registered (Master.WaitWorkers), for
// registerTimeout at most; a worker or the server that stops meanwhile ends the wait
// with its error.
func (f *embeddedFleet) awaitWorkers(ctx context.Context) error {
	var watch sync.WaitGroup
	defer watch.Wait() // after the cancels below, which end it
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	watch.Go(func() {
		select {
		case err := <-f.workerErr:
			f.workerErr <- err // Close counts it
			fail(fmt.Errorf("embedded worker stopped: %w", err))
		case err := <-f.serveErr:
			f.serveErr <- err
			fail(fmt.Errorf("embedded master: %w", err))
		case <-ctx.Done():
		}
	})
	err := f.master.WaitWorkers(ctx, f.workers)
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.DeadlineExceeded) && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("only %d of %d embedded workers registered within %s", f.master.Stats().Workers, f.workers, registerTimeout)
	}
	return err
}

// Close drains the workers, then closes the master and its server.
func (f *embeddedFleet) Close() error {
	f.cancel()
	var errs []error
	for range f.workers {
		if err := <-f.workerErr; err != nil {
			errs = append(errs, err)
		}
	}
	_ = f.master.Close()
	_ = f.srv.Close()
	if err := <-f.serveErr; err != nil && !errors.Is(err, banio.ErrServerClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
