package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/internal/proctest"
	"github.com/banfleet/banfleet/worker"
	"github.com/cenkalti/backoff/v4"
)

// fastReconnect makes workers and the Client come back within milliseconds of the new
// master listening.
func fastReconnect() backoff.BackOff {
	return backoff.NewExponentialBackOff(backoff.WithInitialInterval(10*time.Millisecond),
		backoff.WithMaxInterval(100*time.Millisecond), backoff.WithMaxElapsedTime(0))
}

// TestKill9MasterLosesNothing runs 3,000 jobs through a real cmd/master process, kills
// it with SIGKILL while jobs are queued, running and resolving, and starts a new one on
// the same address and data dir. The workers (in this process) survive and keep their
// jobs; the Client rides through. Every ticket resolves once with its result, and no
// job runs twice: what was running is claimed by its worker, what was queued runs once
// on the new master, and what had resolved is collected from the store.
func TestKill9MasterLosesNothing(t *testing.T) {
	leakcheck.Check(t)
	const jobs = 3000
	bin := proctest.Build(t, t.TempDir(), raceEnabled, "github.com/banfleet/banfleet/cmd/master")[0]
	dir := t.TempDir()
	// A grace longer than the test: an orphan that runs again fails the test rather
	// than hiding in a slow rerun.
	args := []string{"-http", "", "-data-dir", dir, "-orphan-grace", "5m", "-log-level", "warn", "-heartbeat", "100ms", "-heartbeat-timeout", "1s"}
	master := proctest.Start(t, "master", bin, append([]string{"-listen", "127.0.0.1:0"}, args...)...)
	addr := master.AwaitLine(t, "banfleet master listening on ")

	var mu sync.Mutex
	runs := make(map[string]int)
	done := make(chan struct{}, jobs)
	double := func(ctx context.Context, j *worker.Job) (any, error) {
		mu.Lock()
		runs[j.ID]++
		mu.Unlock()
		select { // long enough that jobs are in flight when the master dies
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		n, _ := strconv.Atoi(string(j.Payload))
		return strconv.Itoa(2 * n), nil
	}
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stopWorkers(); wg.Wait() }()
	bopts := []banio.Option{banio.WithHeartbeat(100*time.Millisecond, time.Second), banio.WithReconnectBackoff(fastReconnect)}
	for i := range 3 {
		w := worker.New(addr, worker.WithConcurrency(16), worker.WithName("w"+strconv.Itoa(i)), worker.WithBanIO(bopts...), worker.WithDrainGrace(time.Second))
		w.Handle("double", double)
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(wctx) }()
	}
	client, err := dispatch.NewClient(addr, dispatch.WithBanIO(bopts...))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	tks := make([]*dispatch.Ticket, jobs)
	for i := range tks {
		tk, err := client.Submit(context.Background(), dispatch.Job{ID: "k-" + strconv.Itoa(i), Type: "double", Payload: strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		tks[i] = tk
		go func() { <-tk.Done(); done <- struct{}{} }()
	}
	for range jobs / 3 {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the first master resolved too few jobs")
		}
	}
	master.Kill()
	// Logging at info: the restored and re-adopted counts are read from the log.
	master = proctest.Start(t, "master-2", bin, append(append([]string{"-listen", addr}, args...), "-log-level", "info")...)
	master.AwaitLine(t, "banfleet master listening on ")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, tk := range tks {
		res, err := tk.Wait(ctx)
		if err != nil || string(res) != strconv.Itoa(2*i) {
			t.Fatalf("job %d: %q, %v; want %d", i, res, err, 2*i)
		}
	}
	// The kill caught jobs running, and their workers claimed them. Not necessarily
	// all: an attempt recorded but whose envelope the dying master never wrote is not
	// on any worker, and runs (once) on the new master.
	log := master.Stderr.String()
	orphaned := sumLogged(log, "master restored from its store", "orphaned")
	adopted := sumLogged(log, "worker registered", "adopted")
	t.Logf("the restarted master found %d jobs running (orphaned); the workers claimed %d", orphaned, adopted)
	if orphaned == 0 || adopted == 0 {
		t.Fatalf("%d orphaned attempts, %d re-adopted: want some of each\n%s", orphaned, adopted, log)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range jobs {
		if n := runs["k-"+strconv.Itoa(i)]; n != 1 {
			t.Fatalf("job k-%d ran %d times, want once", i, n)
		}
	}
}

// sumLogged adds up the integer attribute key of the log lines whose message contains
// msg.
func sumLogged(log, msg, key string) int {
	re := regexp.MustCompile(`\b` + key + `=(\d+)`)
	total := 0
	for l := range strings.Lines(log) {
		if !strings.Contains(l, msg) {
			continue
		}
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
	}
	return total
}
