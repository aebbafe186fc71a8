package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/examples/backtest/btjob"
	"github.com/banfleet/banfleet/examples/backtest/engine"
	"github.com/banfleet/banfleet/worker"
	"go.opentelemetry.io/otel"
)

// The two ways to run the sweep differ only in the submitter and the blob upload
// they hand to runSweep.

// sweepOutcome is a finished sweep and what the summary says about it.
type sweepOutcome struct {
	results []engine.Result
	summary runSummary
}

// sweepEmbedded starts a master and cfg.Workers workers in this process and runs
// the sweep on them.
func sweepEmbedded(ctx context.Context, cfg config, bars []engine.Bar, grid engine.Grid, opts sweepOptions,
	log *slog.Logger, announce func(string)) (sweepOutcome, error) {
	handlers := map[string]worker.Handler{btjob.Type: btjob.NewHandler()}
	f, err := startEmbedded(ctx, cfg.Workers, handlers, embeddedOptions(cfg), log, opts.Tracing)
	if err != nil {
		return sweepOutcome{}, err
	}
	desc := fmt.Sprintf("%d embedded workers", cfg.Workers)
	announce(fmt.Sprintf("%s (master %s)", desc, f.addr))
	wall := elapsed()
	results, err := runSweep(ctx, f.master, f.master.PutBlob, bars, grid, opts)
	out := sweepOutcome{results: results, summary: runSummary{
		Wall: wall(), Fleet: desc, Workers: cfg.Workers, BlobsServed: f.master.BlobsServed(), Embedded: true,
	}}
	if cerr := f.Close(); cerr != nil {
		log.Warn("embedded fleet did not stop cleanly", "err", cerr)
	}
	return out, err
}

// sweepRemote runs the sweep on the fleet of the master at cfg.Master.
func sweepRemote(ctx context.Context, cfg config, bars []engine.Bar, grid engine.Grid, opts sweepOptions,
	log *slog.Logger, announce func(string)) (sweepOutcome, error) {
	bopts, err := cfg.Conn.ClientOptions()
	if err != nil {
		return sweepOutcome{}, err
	}
	// The Client rides through a master's restart, blob upload included, for up to
	// -reconnect-budget.
	client, err := dispatch.NewClient(cfg.Master, dispatch.WithBanIO(bopts...),
		dispatch.WithLogger(log), dispatch.WithReconnectBudget(cfg.ReconnectBudget),
		dispatch.WithTracerProvider(opts.Tracing), dispatch.WithPropagator(otel.GetTextMapPropagator()))
	if err != nil {
		return sweepOutcome{}, fmt.Errorf("connect to master %s: %w", cfg.Master, err)
	}
	defer client.Close()
	desc := "the fleet of master " + cfg.Master
	announce(desc)

	upload := func(b []byte) (string, error) { return client.PutBlob(ctx, b) }
	wall := elapsed()
	results, err := runSweep(ctx, client, upload, bars, grid, opts)
	if lost, ok := errors.AsType[*masterLostError](err); ok {
		lost.Master, lost.Budget, lost.Journal = cfg.Master, cfg.ReconnectBudget, opts.Journal
	}
	return sweepOutcome{results: results, summary: runSummary{Wall: wall(), Fleet: desc}}, err
}

// embeddedOptions is the transport configuration shared by the in-process master
// and workers: the token and AES key, if given (TLS needs certificates, which an
// embedded fleet on loopback has no use for).
func embeddedOptions(cfg config) []banio.Option {
	var opts []banio.Option
	if cfg.Conn.Token != "" {
		opts = append(opts, banio.WithToken(cfg.Conn.Token))
	}
	if cfg.Conn.AESKey != "" {
		opts = append(opts, banio.WithAESKey(cfg.Conn.AESKey))
	}
	return opts
}
