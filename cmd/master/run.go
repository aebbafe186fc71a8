package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/store"
	"go.opentelemetry.io/otel"
)

// shutdownTimeout bounds each step of the shutdown (HTTP, span flush).
const shutdownTimeout = 5 * time.Second

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, lookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "master:", err)
		return 2
	}
	log := cfg.Log.Logger(stderr)
	if err := serve(ctx, cfg, stdout, log); err != nil {
		log.Error("master stopped", "err", err)
		return 1
	}
	return 0
}

// serve runs the master until ctx ends, then shuts down in order: the status
// server, the Master, the banio server (every connection closes), the job store, and
// finally the metrics and span exporters (flushed). With a store, the unresolved jobs stay in it
// for the next start, and remote callers re-attach to them then; in memory they fail
// with dispatch.ErrClosed.
//
// Once listening it prints "banfleet master listening on ADDR" and, with a status
// server, "banfleet master status on http://ADDR/" to stdout: with port 0 these
// lines are how a script learns the ports.
func serve(ctx context.Context, cfg config, stdout io.Writer, log *slog.Logger) (err error) {
	bopts, err := cfg.Conn.ServerOptions()
	if err != nil {
		return err
	}
	tp, flush, err := cfg.Trace.Setup(ctx, "banfleet-master")
	if err != nil {
		return err
	}
	defer daemon.FlushSpans(flush, shutdownTimeout, log)
	metrics, err := daemon.SetupMetrics(ctx, &cfg.Trace, "banfleet-master")
	if err != nil {
		return err
	}
	defer daemon.FlushMetrics(metrics, shutdownTimeout, log)
	if cfg.Cluster.Enabled {
		return serveCluster(ctx, cfg, bopts, tp, metrics, stdout, log)
	}

	st, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	if st != nil {
		defer func() {
			if cerr := st.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := banio.NewBanServer(ln.Addr().String(), "banfleet-master", append(bopts, banio.WithLogger(log))...)
	master, err := newMaster(srv, st,
		dispatch.WithOrphanGrace(cfg.OrphanGrace),
		dispatch.WithResultRetention(cfg.Retention),
		dispatch.WithQueueLimit(cfg.QueueLimit),
		dispatch.WithMaxAttempts(cfg.MaxAttempts),
		dispatch.WithDefaultTimeout(cfg.JobTimeout),
		dispatch.WithBlobStoreLimit(cfg.BlobBytes),
		dispatch.WithQueueBytesPerType(cfg.QueueBytes),
		dispatch.WithQueueBytesTotal(cfg.QueueTotal),
		dispatch.WithMaxWorkerTypes(cfg.WorkerTypes),
		dispatch.WithLogger(log),
		dispatch.WithTracerProvider(tp),
		dispatch.WithMeterProvider(metrics.Provider),
		dispatch.WithPropagator(otel.GetTextMapPropagator()))
	if err != nil {
		_ = ln.Close()
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("master listening", "addr", ln.Addr().String(), "tls", cfg.Conn.TLSEnabled(true),
		"token", cfg.Conn.Token != "", "aes", cfg.Conn.AESKey != "", "trace", cfg.Trace.Mode)
	fmt.Fprintf(stdout, "banfleet master listening on %s\n", ln.Addr())

	var httpSrv *http.Server
	httpErr := make(chan error, 1)
	if cfg.HTTP != "" {
		hln, err := net.Listen("tcp", cfg.HTTP)
		if err != nil {
			_ = master.Close()
			_ = srv.Close()
			<-serveErr
			return fmt.Errorf("status server: %w", err)
		}
		status := newStatusServer(master, ln.Addr().String(), time.Now)
		status.metrics, status.pprof = metrics.Handler, cfg.Pprof
		httpSrv = &http.Server{Handler: status.handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { httpErr <- httpSrv.Serve(hln) }()
		log.Info("status server listening", "addr", hln.Addr().String())
		fmt.Fprintf(stdout, "banfleet master status on http://%s/\n", hln.Addr())
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
	case err = <-serveErr:
		serveErr <- err
		err = fmt.Errorf("banio server: %w", err)
	case err = <-httpErr:
		err = fmt.Errorf("status server: %w", err)
	}

	if httpSrv != nil {
		hctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if herr := httpSrv.Shutdown(hctx); herr != nil {
			log.Warn("status server shutdown", "err", herr)
		}
		cancel()
	}
	_ = master.Close()
	_ = srv.Close()
	if serr := <-serveErr; serr != nil && !errors.Is(serr, banio.ErrServerClosed) && err == nil {
		err = fmt.Errorf("banio server: %w", serr)
	}
	fs := master.Stats()
	log.Info("master closed", "done", fs.Done, "failed", fs.Failed, "timed_out", fs.TimedOut, "cancelled", fs.Cancelled, "lost", fs.Lost)
	return err
}

// openStore opens the job store in -data-dir, or returns nil with -in-memory.
func openStore(cfg config, log *slog.Logger) (*store.Bolt, error) {
	if cfg.InMemory {
		log.Warn("jobs are kept in memory only (-in-memory): a restart loses every queued and running job")
		return nil, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w (choose another with -data-dir, or run with -in-memory)", err)
	}
	path := filepath.Join(cfg.DataDir, "master.db")
	st, err := store.OpenBolt(path, store.WithLogger(log), store.WithRetention(cfg.Retention))
	if err != nil {
		return nil, err
	}
	s := st.Stats()
	log.Info("job store open", "path", path, "jobs", s.Jobs, "queued", s.Queued, "running", s.Running, "resolved", s.Resolved, "blobs", s.Blobs, "bytes", s.FileBytes)
	return st, nil
}

// newMaster makes the Master: durable on st, or in memory when st is nil.
func newMaster(srv *banio.ServerIO, st *store.Bolt, opts ...dispatch.Option) (*dispatch.Master, error) {
	if st == nil {
		return dispatch.NewMaster(srv, opts...), nil
	}
	return dispatch.OpenMaster(srv, st, opts...)
}
