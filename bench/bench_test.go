package main

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// smokeConfig runs every case for a very short time.
func smokeConfig(systems []Entry, callers ...int) Config {
	return Config{
		Systems:  systems,
		Callers:  callers,
		Sizes:    []int{64},
		Warmup:   20 * time.Millisecond,
		Duration: 80 * time.Millisecond,
		Repeat:   1,
	}
}

// checkNoLeak fails t if, after a grace period, more goroutines run than
// before.
func checkNoLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines running, %d before:\n%s", n, before, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSmokeAllSystems runs every registered system with 1 and 4 callers at
// 64 B and checks that each case completes with ops, latencies and no
// error (the harness checks every reply's length and stamped content).
func TestSmokeAllSystems(t *testing.T) {
	before := runtime.NumGoroutine()
	results, err := Run(context.Background(), smokeConfig(registry, 1, 4))
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]int{}
	missing := map[string]bool{} // systems unavailable on this machine
	for _, r := range results {
		switch {
		case r.Skipped != "":
			t.Logf("%s callers=%d skipped: %s", r.System, r.Callers, r.Skipped)
			if strings.HasPrefix(r.Skipped, errUnavailable.Error()+": ") {
				missing[r.System] = true
			}
		case r.Error != "":
			t.Errorf("%s callers=%d: %s", r.System, r.Callers, r.Error)
		case len(r.Repeats) != 1 || r.Repeats[0].Ops <= 0:
			t.Errorf("%s callers=%d: no ops: %+v", r.System, r.Callers, r.Repeats)
		case !r.Median.HasLatency || r.Median.P50Ns <= 0 || r.Median.P99Ns < r.Median.P50Ns:
			t.Errorf("%s callers=%d: bad latencies: %+v", r.System, r.Callers, r.Median)
		default:
			ran[r.System]++
		}
	}
	for _, e := range registry {
		if ran[e.Name] == 0 && !missing[e.Name] {
			t.Errorf("%s ran no case", e.Name)
		}
	}
	checkNoLeak(t, before)
}

// TestEchoContent calls every system directly with distinct payloads from
// several callers and compares every reply byte for byte.
func TestEchoContent(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, e := range registry {
		t.Run(e.Name, func(t *testing.T) {
			sys := e.New()
			if _, ok := sys.(Measurer); ok {
				t.Skip("a Measurer has no callers; TestSmokeAllSystems runs it")
			}
			defer func() {
				if err := sys.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := sys.Start(ctx); errors.Is(err, errUnavailable) {
				t.Skip(err)
			} else if err != nil {
				t.Fatalf("start: %v", err)
			}
			callers := 3
			if f, ok := sys.(CaseFilter); ok && f.Supports(Case{Callers: callers, Size: 1}) != nil {
				callers = 1
			}
			errc := make(chan error, callers)
			for i := 0; i < callers; i++ {
				c, err := sys.NewCaller()
				if err != nil {
					t.Fatalf("new caller: %v", err)
				}
				go func() { errc <- echoSome(ctx, c, i) }()
			}
			for i := 0; i < callers; i++ {
				if err := <-errc; err != nil {
					t.Error(err)
				}
			}
		})
	}
	checkNoLeak(t, before)
}

// echoSome makes calls of several sizes, each payload unique to caller i,
// and checks each reply.
func echoSome(ctx context.Context, c Caller, i int) error {
	for _, size := range []int{1, 64, 1000, 70000} {
		for k := 0; k < 5; k++ {
			p := make([]byte, size)
			for j := range p {
				p[j] = byte(i*31 + k*7 + j)
			}
			want := bytes.Clone(p)
			got, err := c.Call(ctx, p)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, want) {
				return errors.New("reply differs from request")
			}
		}
	}
	return nil
}

// fakeBroadcast is a Measurer with its own unit, standing in for a
// broadcast system.
type fakeBroadcast struct{ started bool }

func (f *fakeBroadcast) Start(context.Context) error { f.started = true; return nil }
func (f *fakeBroadcast) NewCaller() (Caller, error) {
	return nil, errors.New("fakeBroadcast has no callers")
}
func (f *fakeBroadcast) Close() error { return nil }
func (f *fakeBroadcast) Measure(ctx context.Context, c Case, d time.Duration) (Sample, error) {
	start := time.Now()
	var h Histogram
	var ops int64
	for time.Since(start) < d {
		h.Record(time.Microsecond)
		ops++
		time.Sleep(time.Millisecond)
	}
	return Sample{Ops: ops * 4, Elapsed: time.Since(start), Latency: &h}, nil
}

// brokenSystem fails every call.
type brokenSystem struct{}

func (brokenSystem) Start(context.Context) error { return nil }
func (brokenSystem) NewCaller() (Caller, error)  { return brokenCaller{}, nil }
func (brokenSystem) Close() error                { return nil }

type brokenCaller struct{}

func (brokenCaller) Call(context.Context, []byte) ([]byte, error) { return []byte("short"), nil }

// missingSystem is a System whose server program is not installed.
type missingSystem struct{ closed *bool }

func (missingSystem) Start(context.Context) error {
	return unavailable("no-such-server is not on PATH")
}
func (missingSystem) NewCaller() (Caller, error) { return nil, errors.New("not started") }
func (m missingSystem) Close() error             { *m.closed = true; return nil }

// TestUnavailableSkipped checks that a system whose Start says it is
// unavailable is reported as skipped with its reason, is closed, and does
// not count as a failure.
func TestUnavailableSkipped(t *testing.T) {
	closed := false
	systems := []Entry{{Name: "missing", About: "test", New: func() System { return missingSystem{&closed} }}}
	results, err := Run(context.Background(), smokeConfig(systems, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 {
		t.Fatalf("want 1 result, got %+v", results)
	}
	r := results[0]
	if r.Error != "" || r.Skipped != "unavailable: no-such-server is not on PATH" || !closed {
		t.Fatalf("want a skip with the reason and a Close, got %+v (closed %v)", r, closed)
	}
	var out bytes.Buffer
	writeMarkdown(&out, newReport(hostInfo(), smokeConfig(systems, 1), results))
	if want := "missing at callers=1 size=64 B: unavailable: no-such-server is not on PATH"; !strings.Contains(out.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, out.String())
	}
}

// TestMeasurerAndFailures checks that a Measurer runs, that a system
// returning wrong replies fails without stopping the run, and that the
// report and ratios render both.
func TestMeasurerAndFailures(t *testing.T) {
	pp, _ := lookupEntry("rawtcp-pingpong")
	systems := []Entry{
		pp,
		{Name: "fake-broadcast", Unit: "delivery", About: "test", New: func() System { return &fakeBroadcast{} }},
		{Name: "broken", About: "test", New: func() System { return brokenSystem{} }},
	}
	results, err := Run(context.Background(), smokeConfig(systems, 1))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Result{}
	for _, r := range results {
		byName[r.System] = r
	}
	if r := byName["fake-broadcast"]; !r.ok() || r.Unit != "delivery" || r.Median.OpsPerSec <= 0 {
		t.Errorf("fake-broadcast: %+v", r)
	}
	if r := byName["broken"]; !strings.Contains(r.Error, "reply is 5 bytes") {
		t.Errorf("broken: want a reply length error, got %+v", r)
	}
	if r := byName["rawtcp-pingpong"]; !r.ok() {
		t.Errorf("rawtcp-pingpong: %+v", r)
	}

	var out bytes.Buffer
	writeMarkdown(&out, newReport(hostInfo(), smokeConfig(systems, 1), results))
	md := out.String()
	for _, want := range []string{"| broken | 1 | 64 B | FAILED |", "one op = one delivery", "p50÷rawtcp-pingpong"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestRatios checks the ratio arithmetic and that absent baselines are
// left out.
func TestRatios(t *testing.T) {
	c := Case{Callers: 16, Size: 64}
	mk := func(name string, rate, p50 float64, cs Case) Result {
		return Result{System: name, Unit: "call", Case: cs, Repeats: []Repeat{{Ops: 1}},
			Median: Summary{OpsPerSec: rate, P50Ns: p50, HasLatency: true}}
	}
	results := []Result{
		mk("rawtcp-pingpong", 50000, 20000, Case{Callers: 1, Size: 64}),
		mk("grpc", 10000, 500000, c),
		mk("banio-rtt", 25000, 100000, c),
	}
	var out bytes.Buffer
	writeRatios(&out, results)
	s := out.String()
	if !strings.Contains(s, "| system | ops/s | ×grpc | p50÷rawtcp-pingpong |") {
		t.Fatalf("unexpected header:\n%s", s)
	}
	if !strings.Contains(s, "| banio-rtt | 25,000 | 2.50 | 5.00 |") {
		t.Fatalf("unexpected row:\n%s", s)
	}
	if strings.Contains(s, "nats-w1") {
		t.Fatalf("absent baseline shown:\n%s", s)
	}
}

// TestHistogram checks quantiles against exact values within the
// histogram's precision.
func TestHistogram(t *testing.T) {
	var h Histogram
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {1, 10000 * time.Microsecond}} {
		got := h.Quantile(tc.q)
		if diff := float64(got-tc.want) / float64(tc.want); diff < -0.04 || diff > 0.04 {
			t.Errorf("q%.2f = %v, want %v ±4%%", tc.q, got, tc.want)
		}
	}
	var small Histogram
	small.Record(3)
	if got := small.Quantile(0.5); got != 3 {
		t.Errorf("exact bucket: got %v, want 3ns", got)
	}
	if idx := histIndex(^uint64(0)); idx >= histBuckets {
		t.Errorf("max value maps to bucket %d of %d", idx, histBuckets)
	}
}

// TestMedian checks odd and even counts.
func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("odd: %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even: %v", m)
	}
}

// TestPeerPairs checks the pair rows: shown when both systems ran the case,
// left out when one is missing or failed.
func TestPeerPairs(t *testing.T) {
	c := Case{Callers: 64, Size: 64}
	mk := func(name string, rate, p50, cpu float64) Result {
		return Result{System: name, Unit: "call", Case: c, Repeats: []Repeat{{Ops: 1}},
			Median: Summary{OpsPerSec: rate, P50Ns: p50, HasLatency: true, CPUNsPerOp: cpu, HasCPU: true}}
	}
	results := []Result{mk("dispatch-w4", 40000, 1e6, 40e3), mk("asynq-redis", 2000, 20e6, 800e3)}
	var out bytes.Buffer
	writeRatios(&out, results)
	s := out.String()
	if !strings.Contains(s, "### callers=64, size=64 B") ||
		!strings.Contains(s, "| dispatch-w4 / asynq-redis | 40,000 | 2,000 | 20.00 | 0.050 | 0.050 |") {
		t.Fatalf("pair row missing:\n%s", s)
	}
	if strings.Contains(s, "dispatch-durable-w4") {
		t.Fatalf("absent system's pair shown:\n%s", s)
	}

	failed := mk("dispatch-durable-w4", 10000, 4e6, 100e3)
	failed.Error = "boom"
	out.Reset()
	writeRatios(&out, append(results, failed))
	if strings.Contains(out.String(), "dispatch-durable-w4 /") {
		t.Fatalf("failed system's pair shown:\n%s", out.String())
	}

	out.Reset()
	writeRatios(&out, append(results, mk("dispatch-durable-w4", 10000, 4e6, 100e3)))
	if !strings.Contains(out.String(), "| dispatch-durable-w4 / asynq-redis | 10,000 | 2,000 | 5.00 | 0.200 | 0.125 |") {
		t.Fatalf("durable pair row missing:\n%s", out.String())
	}
}
