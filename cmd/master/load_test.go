package main

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/worker"
)

// doublingLoad is the kill tests' workload: three workers of 16 slots doubling
// numbers (2 ms each, so that jobs are in flight when a master dies) and one Client,
// both given addrs (one master, or a cluster's list), and jobs "<prefix><i>" submitted
// at once. It counts each job's executions.
type doublingLoad struct {
	t       *testing.T
	prefix  string
	tickets []*dispatch.Ticket
	done    chan struct{} // one per resolved ticket

	// Held jobs (startHeldDoublingLoad): every holdEvery-th job waits in its handler
	// until release closes, so that a master killed meanwhile certainly has attempts
	// under way on its workers; held counts those that began waiting.
	holdEvery int
	release   chan struct{}
	held      atomic.Int32

	mu   sync.Mutex
	runs map[string]int
}

// startDoublingLoad starts the workers and the client and submits jobs; all of it
// stops when the test ends.
func startDoublingLoad(t *testing.T, addrs, prefix string, jobs int) *doublingLoad {
	return startHeldDoublingLoad(t, addrs, prefix, jobs, 0)
}

// startHeldDoublingLoad is startDoublingLoad with every holdEvery-th job (0: none)
// held in its handler until releaseHeld.
func startHeldDoublingLoad(t *testing.T, addrs, prefix string, jobs, holdEvery int) *doublingLoad {
	l := &doublingLoad{t: t, prefix: prefix, done: make(chan struct{}, jobs), runs: make(map[string]int),
		holdEvery: holdEvery, release: make(chan struct{})}
	t.Cleanup(l.releaseHeld)
	double := func(ctx context.Context, j *worker.Job) (any, error) {
		l.mu.Lock()
		l.runs[j.ID]++
		l.mu.Unlock()
		n, _ := strconv.Atoi(string(j.Payload))
		var release <-chan struct{} // nil: never
		wait := 2 * time.Millisecond
		if l.holdEvery > 0 && n%l.holdEvery == 0 {
			l.held.Add(1)
			release, wait = l.release, time.Hour
		}
		select {
		case <-time.After(wait):
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return strconv.Itoa(2 * n), nil
	}
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stopWorkers(); wg.Wait() })
	bopts := []banio.Option{banio.WithHeartbeat(100*time.Millisecond, time.Second), banio.WithReconnectBackoff(fastReconnect)}
	for i := range 3 {
		w := worker.New(addrs, worker.WithConcurrency(16), worker.WithName("w"+strconv.Itoa(i)), worker.WithBanIO(bopts...), worker.WithDrainGrace(time.Second))
		w.Handle("double", double)
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(wctx) }()
	}
	client, err := dispatch.NewClient(addrs, dispatch.WithBanIO(bopts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	l.tickets = make([]*dispatch.Ticket, jobs)
	for i := range l.tickets {
		tk, err := client.Submit(context.Background(), dispatch.Job{ID: prefix + strconv.Itoa(i), Type: "double", Payload: strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		l.tickets[i] = tk
		go func() { <-tk.Done(); l.done <- struct{}{} }()
	}
	return l
}

// releaseHeld lets the held jobs finish; it may be called more than once.
func (l *doublingLoad) releaseHeld() {
	select {
	case <-l.release:
	default:
		close(l.release)
	}
}

// awaitResolved waits until n tickets resolved, failing the test after timeout.
func (l *doublingLoad) awaitResolved(n int, timeout time.Duration, what string) {
	l.t.Helper()
	deadline := time.After(timeout)
	for range n {
		select {
		case <-l.done:
		case <-deadline:
			l.t.Fatal(what)
		}
	}
}

// checkEveryJobOnce waits for every ticket and checks that each has the right result
// and that each job ran exactly once.
func (l *doublingLoad) checkEveryJobOnce(timeout time.Duration) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i, tk := range l.tickets {
		res, err := tk.Wait(ctx)
		if err != nil || string(res) != strconv.Itoa(2*i) {
			l.t.Fatalf("job %d: %q, %v; want %d", i, res, err, 2*i)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.tickets {
		if n := l.runs[l.prefix+strconv.Itoa(i)]; n != 1 {
			l.t.Fatalf("job %s%d ran %d times, want once", l.prefix, i, n)
		}
	}
}
