package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/internal/fleetcli"
	"github.com/banfleet/banfleet/worker"
	"go.opentelemetry.io/otel"
)

// shutdownTimeout bounds the span flush at exit.
const shutdownTimeout = 5 * time.Second

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) int {
	cfg, err := parseConfig(args, lookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	log := cfg.Log.Logger(stderr)
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("worker stopped", "err", err)
		return 1
	}
	return 0
}

// serve runs the worker until ctx ends, then drains. It needs no retry loop of its
// own: the worker runtime retries the first connection until the master answers,
// and banio reconnects forever after a loss. Run ends with an error only when no
// retry can help (the master refused the token, say), and so does serve.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	bopts, err := cfg.Conn.ClientOptions()
	if err != nil {
		return err
	}
	tp, flush, err := cfg.Trace.Setup(ctx, "banfleet-worker")
	if err != nil {
		return err
	}
	defer fleetcli.FlushSpans(flush, shutdownTimeout, log)
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
