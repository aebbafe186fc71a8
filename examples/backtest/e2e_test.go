package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/examples/backtest/engine"
	"github.com/banfleet/banfleet/internal/proctest"
	"github.com/banfleet/banfleet/sweep"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestEndToEnd builds cmd/master, the example's worker (cmd/btworker) and the generic
// cmd/worker, and runs them as separate processes on loopback, as on separate
// machines.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemons")
	}
	bins := proctest.Build(t, t.TempDir(), raceEnabled, "github.com/banfleet/banfleet/cmd/master", "github.com/banfleet/banfleet/examples/backtest/cmd/btworker",
		"github.com/banfleet/banfleet/cmd/worker")
	masterBin, workerBin, echoWorkerBin := bins[0], bins[1], bins[2]
	t.Run("SweepSurvivesKilledWorker", func(t *testing.T) { testSweepSurvivesKilledWorker(t, masterBin, workerBin) })
	t.Run("SweepSurvivesMasterRestart", func(t *testing.T) { testSweepSurvivesMasterRestart(t, masterBin, workerBin) })
	t.Run("SweepGivesUpOnLostMaster", func(t *testing.T) { testSweepGivesUpOnLostMaster(t, masterBin, workerBin) })
	t.Run("OneTraceAcrossProcesses", func(t *testing.T) { testOneTrace(t, masterBin, echoWorkerBin) })
}

// startMaster runs the master on free ports, with its store in a new temporary
// directory, and returns it with its banio address and status URL.
func startMaster(t *testing.T, bin string, extra ...string) (p *proctest.Proc, addr, statusURL string) {
	t.Helper()
	return startMasterOn(t, "master", bin, "127.0.0.1:0", t.TempDir(), extra...)
}

// startMasterOn runs the master on the banio address listen (a restarted master
// reuses its predecessor's) with its store in dataDir, and its status server on a
// free port.
func startMasterOn(t *testing.T, name, bin, listen, dataDir string, extra ...string) (p *proctest.Proc, addr, statusURL string) {
	t.Helper()
	args := append([]string{"-listen", listen, "-http", "127.0.0.1:0", "-log-level", "warn", "-data-dir", dataDir}, extra...)
	p = proctest.Start(t, name, bin, args...)
	addr = p.AwaitLine(t, "banfleet master listening on ")
	statusURL = p.AwaitLine(t, "banfleet master status on ")
	return p, addr, statusURL
}

// testSweepSurvivesKilledWorker runs a sweep through a remote Client against a
// master and two worker processes, kills one worker mid-sweep, and checks that the
// results are still bit-identical to an in-process run.
func testSweepSurvivesKilledWorker(t *testing.T, masterBin, workerBin string) {
	_, addr, statusURL := startMaster(t, masterBin)
	w1 := proctest.Start(t, "worker-1", workerBin, "-master", addr, "-name", "w1", "-concurrency", "2", "-log-level", "warn")
	proctest.Start(t, "worker-2", workerBin, "-master", addr, "-name", "w2", "-concurrency", "2", "-log-level", "warn")
	awaitStatus(t, statusURL, "two workers", func(s masterStatus) bool { return len(s.Workers) == 2 })

	bars, grid := e2eBars(), e2eGrid()
	want, err := engine.RunAll(bars, grid.Params(), 0)
	if err != nil {
		t.Fatal(err)
	}

	client, err := dispatch.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	killAt := len(want) / 5
	var received, afterKill atomic.Int64
	opts := sweepOptions{MaxInFlight: 32, OnResult: func(r sweep.Result) {
		switch n := received.Add(1); {
		case n == int64(killAt):
			w1.Kill()
		case n > int64(killAt):
			afterKill.Add(1)
		}
	}}
	got, err := runSweep(ctx, client, func(b []byte) (string, error) { return client.PutBlob(ctx, b) }, bars, grid, opts)
	if err != nil {
		t.Fatal(err)
	}
	assertEqualResults(t, got, want)
	select {
	case <-w1.Exited():
	default:
		t.Fatal("worker 1 is still running")
	}
	if afterKill.Load() == 0 {
		t.Fatal("the kill did not happen mid-sweep")
	}
	st := awaitStatus(t, statusURL, "the killed worker to be dropped", func(s masterStatus) bool {
		return len(s.Workers) == 1 && s.Workers[0].Name == "w2"
	})
	if st.Done < uint64(len(want)) {
		t.Fatalf("master reports %d jobs done, want at least %d", st.Done, len(want))
	}
	t.Logf("%d jobs, worker 1 killed after %d results; %d re-dispatches", len(want), killAt, st.Retried)
}

// e2eBars and e2eGrid are the sweep of the end-to-end tests: 302 parameter sets.
func e2eBars() []engine.Bar { return engine.Synthetic(1500, 11) }

func e2eGrid() engine.Grid {
	return engine.Grid{
		Fast:  []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 35},
		Slow:  []int{20, 30, 40, 50, 60, 80, 100, 120},
		Kinds: []string{engine.KindSMA, engine.KindEMA}, FeeBps: 4, SlippageBps: 2,
	}
}

// testSweepSurvivesMasterRestart runs the example's remote sweep (sweepRemote, as
// -master does) against a durable master and two worker processes, kills the master
// with SIGKILL after a quarter of the results, starts a new one on the same address
// and data dir, and checks that the sweep ends with results bit-identical to an
// in-process run.
func testSweepSurvivesMasterRestart(t *testing.T, masterBin, workerBin string) {
	dataDir := t.TempDir()
	// The orphans of the killed master (jobs running on its workers) run again soon.
	grace := []string{"-orphan-grace", "500ms"}
	m1, addr, statusURL := startMasterOn(t, "master-1", masterBin, "127.0.0.1:0", dataDir, grace...)
	proctest.Start(t, "worker-1", workerBin, "-master", addr, "-name", "w1", "-concurrency", "2", "-log-level", "warn")
	proctest.Start(t, "worker-2", workerBin, "-master", addr, "-name", "w2", "-concurrency", "2", "-log-level", "warn")
	awaitStatus(t, statusURL, "two workers", func(s masterStatus) bool { return len(s.Workers) == 2 })

	bars, grid := e2eBars(), e2eGrid()
	want, err := engine.RunAll(bars, grid.Params(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	killAt := len(want) / 4
	var received, afterRestart int
	var restarted time.Time
	var statusURL2 string
	opts := sweepOptions{MaxInFlight: 32, OnResult: func(r sweep.Result) {
		// On the test's goroutine (runSweep's reading loop): no results are read
		// while the master is down and coming back.
		switch received++; {
		case received == killAt:
			m1.Kill()
			_, addr2, url := startMasterOn(t, "master-2", masterBin, addr, dataDir, grace...)
			if addr2 != addr {
				t.Fatalf("the new master listens on %s, not %s", addr2, addr)
			}
			statusURL2, restarted = url, time.Now()
		case received > killAt:
			afterRestart++
		}
	}}
	out, err := sweepRemote(ctx, remoteConfig(t, addr, "-reconnect-budget", "20s"), bars, grid, opts, quietLog, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	assertEqualResults(t, out.results, want)
	if afterRestart == 0 {
		t.Fatal("the restart did not happen mid-sweep")
	}
	t.Logf("%d jobs, master killed after %d results; the sweep ended %v after its restart",
		len(want), killAt, time.Since(restarted).Round(time.Millisecond))
	awaitStatus(t, statusURL2, "the workers to re-register", func(s masterStatus) bool { return len(s.Workers) == 2 })
}

// testSweepGivesUpOnLostMaster kills the master mid-sweep for good and checks that
// the remote sweep gives up once its reconnect budget is spent, saying in words that
// the master was lost, how many results it had, and how to resume.
func testSweepGivesUpOnLostMaster(t *testing.T, masterBin, workerBin string) {
	master, addr, statusURL := startMaster(t, masterBin)
	proctest.Start(t, "worker", workerBin, "-master", addr, "-name", "w1", "-concurrency", "2", "-log-level", "warn")
	awaitStatus(t, statusURL, "the worker", func(s masterStatus) bool { return len(s.Workers) == 1 })

	journal := filepath.Join(t.TempDir(), "sweep.journal")
	const budget = 300 * time.Millisecond
	cfg := remoteConfig(t, addr, "-reconnect-budget", budget.String(), "-journal", journal)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const killAt = 20
	received := 0 // results, not failures
	var killed time.Time
	opts := sweepOptions{Journal: journal, MaxInFlight: 16, OnResult: func(r sweep.Result) {
		if r.Err != nil {
			return
		}
		if received++; received == killAt {
			master.Kill()
			killed = time.Now()
		}
	}}
	_, err := sweepRemote(ctx, cfg, e2eBars(), e2eGrid(), opts, quietLog, func(string) {})
	if killed.IsZero() {
		t.Fatalf("the sweep ended before the master was killed: %v", err)
	}
	took := time.Since(killed)
	if !errors.Is(err, dispatch.ErrMasterLost) {
		t.Fatalf("err = %v, want one wrapping dispatch.ErrMasterLost", err)
	}
	jobs := len(e2eGrid().Params())
	for _, want := range []string{
		"lost the master at " + addr,
		"unreachable for " + budget.String(),
		fmt.Sprintf("with %d of %d results", received, jobs),
		"run again with -journal " + journal,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	t.Logf("gave up %v after the master was killed: %v", took.Round(time.Millisecond), err)
	if took > budget+10*time.Second {
		t.Errorf("the sweep gave up %v after the master died, with a reconnect budget of %v", took, budget)
	}
	data, rerr := os.ReadFile(journal)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if n := bytes.Count(data, []byte("\n")) - 1; n != received { // its first line is the header

		t.Errorf("the journal holds %d results, the sweep received %d", n, received)
	}
}

// testOneTrace calls through the daemons with tracing to stdout and checks that the
// caller's, the master's and the worker's spans share one trace, and that SIGTERM
// shuts both daemons down cleanly with their spans flushed.
func testOneTrace(t *testing.T, masterBin, workerBin string) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGTERM")
	}
	master, addr, statusURL := startMaster(t, masterBin, "-trace", "stdout")
	wk := proctest.Start(t, "worker", workerBin, "-master", addr, "-trace", "stdout", "-log-level", "warn")
	awaitStatus(t, statusURL, "the worker", func(s masterStatus) bool { return len(s.Workers) == 1 })

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	client, err := dispatch.NewClient(addr,
		dispatch.WithTracerProvider(tp), dispatch.WithPropagator(propagation.TraceContext{}))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx, span := tp.Tracer("e2e").Start(cctx, "e2e root")
	res, err := client.Call(ctx, "echo", "traced")
	span.End()
	if err != nil || string(res) != "traced" {
		t.Fatalf("echo: %q, %v", res, err)
	}
	traceID := span.SpanContext().TraceID().String()

	for _, p := range []*proctest.Proc{wk, master} {
		if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(t, 20*time.Second); err != nil {
			t.Fatalf("%s after SIGTERM: %v", p.Name, err)
		}
	}
	for _, c := range []struct {
		p    *proctest.Proc
		span string
	}{{master, `"Name":"dispatch echo"`}, {wk, `"Name":"execute echo"`}} {
		out := c.p.Stdout.String()
		if !strings.Contains(out, c.span) || !strings.Contains(out, traceID) {
			t.Errorf("%s's spans lack %s in trace %s:\n%s", c.p.Name, c.span, traceID, out)
		}
	}
}
