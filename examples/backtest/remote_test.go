package main

import (
	"context"
	"io"
	"net"
	"sync"
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
