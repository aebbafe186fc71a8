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
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/worker"
	"go.opentelemetry.io/otel"
)

// shutdownTimeout bounds each step of the shutdown at exit (HTTP, metrics and span
// flush).
const shutdownTimeout = 5 * time.Second

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, lookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	log := cfg.Log.Logger(stderr)
	if err := serve(ctx, cfg, stdout, log); err != nil {
		log.Error("worker stopped", "err", err)
		return 1
	}
	return 0
}

// serve runs the worker until ctx ends, then drains. It needs no retry loop of its
// own: the worker runtime retries the first connection until the master answers,
// and banio reconnects forever after a loss. Run ends with an error only when no
// retry can help (the master refused the token, say), and so does serve.
//
// With -http it serves /metrics and /healthz and prints "banfleet worker metrics on
// http://ADDR/metrics" to stdout: with port 0 that line is how a script learns the
// port.
func serve(ctx context.Context, cfg config, stdout io.Writer, log *slog.Logger) error {
	bopts, err := cfg.Conn.ClientOptions()
	if err != nil {
		return err
	}
	tp, flush, err := cfg.Trace.Setup(ctx, "banfleet-worker")
	if err != nil {
		return err
	}
	defer daemon.FlushSpans(flush, shutdownTimeout, log)
	metrics, err := daemon.SetupMetrics(ctx, &cfg.Trace, "banfleet-worker")
	if err != nil {
		return err
	}
	defer daemon.FlushMetrics(metrics, shutdownTimeout, log)
	if cfg.HTTP != "" {
		stopHTTP, err := serveHTTP(cfg.HTTP, metrics.Handler, stdout, log)
		if err != nil {
			return err
		}
		defer stopHTTP()
	}
	w := worker.New(cfg.Master,
		worker.WithID(cfg.ID), // "" keeps the runtime's new UUID
		worker.WithName(cfg.Name),
		worker.WithConcurrency(cfg.Concurrency),
		worker.WithLabels(map[string]string(cfg.Labels)),
		worker.WithDrainGrace(cfg.DrainGrace),
		worker.WithBlobCache(cfg.BlobCache),
		worker.WithBanIO(append(bopts, banio.WithLogger(log))...),
		worker.WithLogger(log),
		worker.WithTracerProvider(tp),
		worker.WithMeterProvider(metrics.Provider),
		worker.WithPropagator(otel.GetTextMapPropagator()))
	for typ, h := range handlers() {
		w.Handle(typ, h)
	}
	log.Info("worker starting", "master", cfg.Master, "id", w.ID(), "name", cfg.Name, "concurrency", cfg.Concurrency,
		"labels", cfg.Labels.String(), "tls", cfg.Conn.TLSEnabled(false), "trace", cfg.Trace.Mode)
	if err := w.Run(ctx); err != nil {
		return err
	}
	log.Info("worker stopped", "id", w.ID())
	return nil
}

// serveHTTP serves /metrics and /healthz on addr until the returned function shuts it
// down.
func serveHTTP(addr string, metrics http.Handler, stdout io.Writer, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics server: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics server listening", "addr", ln.Addr().String())
	fmt.Fprintf(stdout, "banfleet worker metrics on http://%s/metrics\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("metrics server shutdown", "err", err)
		}
		<-done
	}, nil
}
