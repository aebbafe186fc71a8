package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/examples/backtest/btjob"
	"github.com/banfleet/banfleet/examples/backtest/engine"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/cenkalti/backoff/v4"
)

// errDropped is what a Client request fails with when the connection drops under it.
var errDropped = fmt.Errorf("dispatch: upload blob: %w: waiting for \"k\"", banio.ErrConnClosed)

func TestRideThrough(t *testing.T) {
	const budget = 100 * time.Millisecond
	ctx := context.Background()

	calls := 0
	err := rideThrough(ctx, budget, false, func(context.Context) error {
		if calls++; calls < 3 {
			return errDropped
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("answered on the third attempt: %v after %d calls", err, calls)
	}

	calls = 0
	refused := errors.New("refused")
	if err := rideThrough(ctx, budget, false, func(context.Context) error { calls++; return refused }); err != refused || calls != 1 {
		t.Fatalf("an answer that is an error: %v after %d calls, want it at once", err, calls)
	}

	// Dropped, then no answer: the attempts after the drop are bounded by the budget.
	start := time.Now()
	calls = 0
	err = rideThrough(ctx, budget, false, func(ctx context.Context) error {
		if calls++; calls == 1 {
			return errDropped
		}
		<-ctx.Done()
		return fmt.Errorf("dispatch: upload blob: %w", ctx.Err())
	})
	if !errors.Is(err, dispatch.ErrMasterLost) || time.Since(start) > budget+time.Second {
		t.Fatalf("after a drop, no answer: %v after %v, want dispatch.ErrMasterLost after %v", err, time.Since(start), budget)
	}

	// boundFirst: a first attempt that gets no answer counts as well.
	start = time.Now()
	err = rideThrough(ctx, budget, true, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if !errors.Is(err, dispatch.ErrMasterLost) || time.Since(start) > budget+time.Second {
		t.Fatalf("no answer at all: %v after %v, want dispatch.ErrMasterLost after %v", err, time.Since(start), budget)
	}

	// The caller's context ends it with the request's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := rideThrough(cctx, budget, true, func(ctx context.Context) error { return ctx.Err() }); !errors.Is(err, context.Canceled) || errors.Is(err, dispatch.ErrMasterLost) {
		t.Fatalf("cancelled: %v", err)
	}
}


func TestReconnectBackoff(t *testing.T) {
	for _, c := range []struct {
		budget, most time.Duration
	}{
		{dispatch.DefaultReconnectBudget, 1500 * time.Millisecond}, // 1 s ± 50 %
		{time.Second, 150 * time.Millisecond},                      // a tenth of the budget
		{time.Millisecond, 15 * time.Millisecond},
	} {
		b := reconnectBackoff(c.budget)()
		var elapsed time.Duration
		for range 1000 {
			d := b.NextBackOff()
			if d == backoff.Stop || d > c.most {
				t.Fatalf("budget %v: retry in %v after %v, want at most %v and never stop", c.budget, d, elapsed, c.most)
			}
			elapsed += d
		}
	}
}

// TestRemoteSweepRidesThroughDroppedUpload cuts the connection of a remote sweep in
// the middle of its bar upload, and checks that the sweep uploads them again once
// reconnected and ends with the same results as engine.RunAll.
func TestRemoteSweepRidesThroughDroppedUpload(t *testing.T) {
	leakcheck.Check(t)
	f := startTestFleet(t, 2, btjob.NewHandler())
	bars := engine.Synthetic(1500, 3) // 72 KB encoded
	proxy := startDropProxy(t, f.addr, 8<<10)
	want, err := engine.RunAll(bars, smallGrid().Params(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := sweepRemote(ctx, remoteConfig(t, proxy.addr(), "-reconnect-budget", "10s"), bars, smallGrid(),
		sweepOptions{MaxInFlight: 32}, quietLog, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-proxy.dropped:
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

// dropProxy forwards TCP connections to a target, and cuts the first one once its
// client has sent more than dropAfter bytes (without forwarding the bytes past it).
type dropProxy struct {
	ln        net.Listener
	target    string
	dropAfter int
	dropped   chan struct{} // closed once the first connection is cut

	mu    sync.Mutex
	conns []net.Conn
	first bool // the first connection has been accepted
	wg    sync.WaitGroup
}

func startDropProxy(t *testing.T, target string, dropAfter int) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, target: target, dropAfter: dropAfter, dropped: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *dropProxy) addr() string { return p.ln.Addr().String() }

func (p *dropProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		cut := !p.first
		p.first = true
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			defer server.Close()
			defer client.Close()
			if !cut {
				_, _ = io.Copy(server, client)
				return
			}
			_, _ = io.CopyN(server, client, int64(p.dropAfter))
			close(p.dropped)
		}()
		go func() {
			defer p.wg.Done()
			defer client.Close()
			_, _ = io.Copy(client, server)
		}()
	}
}
