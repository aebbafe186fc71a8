package cluster

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/worker"
)

// fastBackoff reconnects quickly in tests.
func fastBackoff() backoff.BackOff {
	return backoff.NewExponentialBackOff(backoff.WithInitialInterval(5*time.Millisecond),
		backoff.WithMaxInterval(50*time.Millisecond), backoff.WithMaxElapsedTime(0))
}

// testConnOptions: fast reconnects, for workers, clients and servers, and heartbeats
// that two busy cores under -race do not miss (a connection given up for a late
// heartbeat loses its worker's attempts, which then run twice, as they should).
func testConnOptions() []banio.Option {
	return []banio.Option{banio.WithHeartbeat(200*time.Millisecond, 3*time.Second), banio.WithReconnectBackoff(fastBackoff)}
}

// counter doubles the number in a job's payload and counts executions per job id, on
// every worker of a test together; while gate is not nil and open it holds jobs.
type counter struct {
	mu      sync.Mutex
	runs    map[string]int
	started chan string
	gate    chan struct{}
}

func newCounter(gated bool) *counter {
	c := &counter{runs: make(map[string]int), started: make(chan string, 1<<16)}
	if gated {
		c.gate = make(chan struct{})
	}
	return c
}

func (c *counter) handle(ctx context.Context, j *worker.Job) (any, error) {
	c.mu.Lock()
	c.runs[j.ID]++
	c.mu.Unlock()
	select {
	case c.started <- j.ID:
	default:
	}
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	n, err := strconv.Atoi(string(j.Payload))
	if err != nil {
		return nil, err
	}
	return strconv.Itoa(2 * n), nil
}

// twice lists the jobs that ran more than once.
func (c *counter) twice() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, n := range c.runs {
		if n > 1 {
			out = append(out, id+"×"+strconv.Itoa(n))
		}
	}
	return out
}

// startWorker runs a worker of "double" jobs against addr (one address, or every
// member's, comma-separated) until the test ends.
func startWorker(t *testing.T, addr string, h worker.Handler, opts ...worker.Option) {
	t.Helper()
	opts = append([]worker.Option{worker.WithBanIO(testConnOptions()...), worker.WithDrainGrace(time.Second), worker.WithConcurrency(64)}, opts...)
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		opts = append(opts, worker.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	}
	w := worker.New(addr, opts...)
	w.Handle("double", h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// newClient connects a remote Client to addr until the test ends.
func newClient(t *testing.T, addr string) *dispatch.Client {
	t.Helper()
	c, err := dispatch.NewClient(addr, dispatch.WithBanIO(testConnOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitWorkers waits until the leader's master has n workers.
func waitWorkers(t *testing.T, m *dispatch.Master, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := m.WaitWorkers(ctx, n); err != nil {
		t.Fatalf("waiting for %d workers: %v", n, err)
	}
}

// submitDoubles submits n jobs "<prefix><i>" through c.
func submitDoubles(t *testing.T, c *dispatch.Client, prefix string, n int) []*dispatch.Ticket {
	t.Helper()
	tks := make([]*dispatch.Ticket, n)
	for i := range tks {
		tk, err := c.Submit(context.Background(), dispatch.Job{ID: prefix + strconv.Itoa(i), Type: "double", Payload: strconv.Itoa(i)})
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		tks[i] = tk
	}
	return tks
}

// checkDoubles waits for every ticket and checks its result.
func checkDoubles(t *testing.T, tks []*dispatch.Ticket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	for i, tk := range tks {
		res, err := tk.Wait(ctx)
		if err != nil || string(res) != strconv.Itoa(2*i) {
			t.Fatalf("job %s: %q, %v; want %d", tk.ID(), res, err, 2*i)
		}
	}
}

// masterOptions for the members' masters in tests: the workers' own claims settle
// orphans, so the grace only matters for workers that are gone.
func testMasterOptions() []dispatch.Option {
	opts := []dispatch.Option{dispatch.WithOrphanGrace(5 * time.Second), dispatch.WithRetryBackoff(time.Millisecond, 10*time.Millisecond)}
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		opts = append(opts, dispatch.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	return opts
}

func withTestServers(cfg *Config) {
	cfg.NewServer = func() *banio.ServerIO { return banio.NewBanServer("", cfg.ID, testConnOptions()...) }
	cfg.MasterOptions = testMasterOptions()
}
