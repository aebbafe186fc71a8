package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/banfleet/banfleet/examples/backtest/btjob"
	"github.com/banfleet/banfleet/examples/backtest/engine"
	"github.com/banfleet/banfleet/internal/leakcheck"
)

// TestRemoteSweepRidesThroughDroppedUpload cuts the connection of a remote sweep in
// the middle of its bar upload, and checks that the sweep uploads them again once
// reconnected and ends with the same results as engine.RunAll.
func TestRemoteSweepRidesThroughDroppedUpload(t *testing.T) {
	leakcheck.Check(t)
	f := startTestFleet(t, 2, btjob.NewHandler())
	bars := engine.Synthetic(1500, 3) // 72 KB encoded
	proxy := f.Link()
	dropped := proxy.CutAfter(8 << 10)
	want, err := engine.RunAll(bars, smallGrid().Params(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := sweepRemote(ctx, remoteConfig(t, proxy.Addr(), "-reconnect-budget", "10s"), bars, smallGrid(),
		sweepOptions{MaxInFlight: 32}, quietLog, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-dropped:
	default:
		t.Fatal("the proxy never cut the upload")
	}
	assertEqualResults(t, out.results, want)
}

// remoteConfig is the example's configuration for a sweep on the master at addr, as
// parsed from its command line with extra flags.
func remoteConfig(t *testing.T, addr string, extra ...string) config {
	t.Helper()
	cfg, err := parseConfig(append([]string{"-master", addr, "-quiet", "-report", ""}, extra...), env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
