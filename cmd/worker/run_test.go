package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
)

// testMaster serves a master on loopback for the test.
func testMaster(t *testing.T, opts ...banio.Option) (*dispatch.Master, string) {
	t.Helper()
	f := fleettest.New(t, nil, fleettest.WithServerBanIO(opts...))
	return f.Master(), f.Addr()
}

// env is a fake environment.
var env = daemon.MapEnv

// startServe runs the worker in-process until the test ends or stop is called;
// stop returns serve's error.
func startServe(t *testing.T, m *dispatch.Master, args ...string) (stop func() error) {
	t.Helper()
	cfg, err := newDaemon().Parse(args, env(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- newDaemon().Serve(ctx, cfg, io.Discard, slog.New(slog.DiscardHandler)) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := m.WaitWorkers(wctx, 1); err != nil {
		t.Fatalf("the worker did not register: %v", err)
	}
	return stop
}

func TestServeRunsBuiltinJobs(t *testing.T) {
	leakcheck.Check(t)
	m, addr := testMaster(t)
	stop := startServe(t, m, "-master", addr, "-name", "unit", "-id", "worker-7", "-labels", "zone=z1", "-concurrency", "3")

	w := m.Workers()[0]
	if w.ID != "worker-7" || w.Name != "unit" || w.Capacity != 3 || w.Labels["zone"] != "z1" || !slices.Equal(slices.Sorted(slices.Values(w.Types)), []string{"echo", "sleep"}) {
		t.Errorf("registered as %+v", w)
	}
	ctx := context.Background()
	if res, err := m.Call(ctx, "echo", []byte("hello")); err != nil || string(res) != "hello" {
		t.Errorf("echo: %q %v", res, err)
	}
	if res, err := m.Call(ctx, "sleep", "5ms"); err != nil || string(res) != "slept 5ms" {
		t.Errorf("sleep: %q %v", res, err)
	}
	if res, err := m.Call(ctx, "sleep", []byte(`"1ms"`)); err != nil || string(res) != "slept 1ms" {
		t.Errorf("sleep with a JSON string: %q %v", res, err)
	}
	var remote *dispatch.RemoteError
	if _, err := m.Call(ctx, "sleep", "forever"); !errors.As(err, &remote) || remote.Code != "bad_payload" {
		t.Errorf("sleep forever: %v", err)
	}

	// sleep honours its context: a job timeout ends it long before its duration.
	start := time.Now()
	tk, err := m.Submit(ctx, dispatch.Job{Type: "sleep", Payload: "1h", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Wait(ctx); err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("a 1h sleep with a 50ms timeout: %v after %s", err, time.Since(start))
	}

	if err := stop(); err != nil {
		t.Fatalf("serve after cancel: %v", err)
	}
}

func TestServeDrainsRunningJobs(t *testing.T) {
	leakcheck.Check(t)
	m, addr := testMaster(t)
	stop := startServe(t, m, "-master", addr, "-drain-grace", "10s")
	tk, err := m.Submit(context.Background(), dispatch.Job{Type: "sleep", Payload: "300ms"})
	if err != nil {
		t.Fatal(err)
	}
	// sleep reports progress as it starts. A job merely on its way to the worker when
	// the drain begins would be handed back instead, and wait for another worker.
	if p, ok := <-tk.Progress(); !ok || p.Message != "sleeping 300ms" {
		t.Fatalf("progress %+v %v", p, ok)
	}
	if err := stop(); err != nil { // SIGTERM: drains, the running job finishes
		t.Fatal(err)
	}
	res, err := tk.Wait(context.Background())
	if err != nil || string(res) != "slept 300ms" {
		t.Fatalf("a job running at shutdown: %q %v, want it finished within the grace period", res, err)
	}
}

func TestServeStopsOnRefusedToken(t *testing.T) {
	leakcheck.Check(t)
	_, addr := testMaster(t, banio.WithToken("right"), banio.WithAuthPenalty(0, 0))
	for _, c := range []struct {
		args  []string
		words string
	}{
		{[]string{"-token", "wrong"}, "authentication failed"},
		{nil, "authentication required"},
	} {
		cfg, err := newDaemon().Parse(append([]string{"-master", addr}, c.args...), env(), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = newDaemon().Serve(ctx, cfg, io.Discard, slog.New(slog.DiscardHandler))
		if !errors.Is(err, banio.ErrAuthFailed) || !strings.Contains(err.Error(), c.words) || !strings.Contains(err.Error(), "check -token / BANFLEET_TOKEN") {
			t.Errorf("serve with %q: %v, want it to say %q and what to check", c.args, err, c.words)
		}
		if ctx.Err() != nil {
			t.Errorf("serve with %q retried a refused token until the test's deadline", c.args)
		}
		cancel()
	}
}

func TestServeWaitsForMaster(t *testing.T) {
	leakcheck.Check(t)
	// Nothing listens here: serve keeps trying until its context ends, then returns nil.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := newDaemon().Parse([]string{"-master", addr}, env(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := newDaemon().Serve(ctx, cfg, io.Discard, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("serve without a master: %v, want nil at shutdown", err)
	}
}

func TestRunReportsBadConfig(t *testing.T) {
	var stderr bytes.Buffer
	if code := newDaemon().Run(context.Background(), []string{"-concurrency", "0"}, env(), io.Discard, &stderr); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
	stderr.Reset()
	if code := newDaemon().Run(context.Background(), []string{"-aes-key", "xyz"}, env(), io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "aes-key") {
		t.Errorf("bad AES key: exit %d, stderr %q", code, &stderr)
	}
	stderr.Reset()
	if code := newDaemon().Run(context.Background(), []string{"-tls-ca", "/nonexistent-ca.pem", "-log-level", "error"}, env(), io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "nonexistent-ca.pem") {
		t.Errorf("missing CA file: exit %d, stderr %q", code, &stderr)
	}
}
