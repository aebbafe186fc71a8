package dispatch_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

// gate is a handler that blocks until released, announcing each job it starts.
type gate struct {
	started chan *worker.Job
	release chan struct{}
}

func newGate() *gate {
	return &gate{started: make(chan *worker.Job, 100), release: make(chan struct{})}
}

func (g *gate) handle(ctx context.Context, job *worker.Job) (any, error) {
	g.started <- job
	select {
	case <-g.release:
		return "released", nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestRegistrationAndWorkers(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	f.startWorker(map[string]worker.Handler{"echo": echo, "other": echo},
		worker.WithConcurrency(3), worker.WithName("alpha"), worker.WithID("w-alpha"),
		worker.WithLabels(map[string]string{"region": "eu"}))
	ws := f.master.Workers()
	if len(ws) != 1 {
		t.Fatalf("Workers() = %d entries, want 1", len(ws))
	}
	w := ws[0]
	if w.ID != "w-alpha" || w.Name != "alpha" || w.Capacity != 3 || w.Labels["region"] != "eu" || len(w.Types) != 2 || w.Remote == "" {
		t.Fatalf("unexpected worker info %+v", w)
	}
	if s := f.master.Stats(); s.Workers != 1 || s.Capacity != 3 {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestLeastLoadedNeverAboveCapacity(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	g := newGate()
	f.startWorker(map[string]worker.Handler{"block": g.handle}, worker.WithConcurrency(2), worker.WithID("a"))
	f.startWorker(map[string]worker.Handler{"block": g.handle}, worker.WithConcurrency(2), worker.WithID("b"))
	ctx := context.Background()
	var tickets []*dispatch.Ticket
	for range 5 {
		tk, err := f.master.Submit(ctx, dispatch.Job{Type: "block"})
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
	}
	perWorker := map[string]int{}
	for range 4 {
		select {
		case j := <-g.started:
			_ = j
		case <-time.After(10 * time.Second):
			t.Fatal("jobs did not start")
		}
	}
	for _, w := range f.master.Workers() {
		perWorker[w.ID] = w.InFlight
		if w.InFlight > w.Capacity {
			t.Fatalf("worker %s runs %d jobs with capacity %d", w.ID, w.InFlight, w.Capacity)
		}
	}
	if perWorker["a"] != 2 || perWorker["b"] != 2 {
		t.Fatalf("load not spread: %v", perWorker)
	}
	if s := f.master.Stats(); s.Queued != 1 || s.InFlight != 4 || s.QueuedByType["block"] != 1 {
		t.Fatalf("Stats = %+v, want 1 queued and 4 in flight", s)
	}
	close(g.release)
	for _, tk := range tickets {
		if res, err := tk.Wait(ctx); err != nil || string(res) != "released" {
			t.Fatalf("ticket %s: %q %v", tk.ID(), res, err)
		}
	}
	if s := f.master.Stats(); s.Done != 5 || s.Queued != 0 || s.InFlight != 0 {
		t.Fatalf("Stats after = %+v", s)
	}
}

func TestRoundRobinOnTies(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	whoami := func(id string) worker.Handler {
		return func(context.Context, *worker.Job) (any, error) { return id, nil }
	}
	f.startWorker(map[string]worker.Handler{"who": whoami("a")}, worker.WithConcurrency(1))
	f.startWorker(map[string]worker.Handler{"who": whoami("b")}, worker.WithConcurrency(1))
	count := map[string]int{}
	for range 20 {
		res, err := f.master.Call(context.Background(), "who", nil)
		if err != nil {
			t.Fatal(err)
		}
		count[string(res)]++
	}
	if count["a"] != 10 || count["b"] != 10 {
		t.Fatalf("sequential jobs on idle workers should alternate: %v", count)
	}
}

func TestTicketResolvesOnce(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	f.startWorker(map[string]worker.Handler{"echo": echo})
	tk, err := f.master.Submit(context.Background(), dispatch.Job{ID: "req-1", Type: "echo", Payload: map[string]int{"x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if tk.ID() != "req-1" {
		t.Fatalf("ID() = %q", tk.ID())
	}
	a, err1 := tk.Wait(context.Background())
	b, err2 := tk.Wait(context.Background())
	if err1 != nil || err2 != nil || string(a) != `{"x":1}` || string(a) != string(b) {
		t.Fatalf("Wait twice: %q %v / %q %v", a, err1, b, err2)
	}
	if _, err := f.master.Submit(context.Background(), dispatch.Job{Type: ""}); !errors.Is(err, dispatch.ErrBadJob) {
		t.Fatalf("empty type: %v", err)
	}
}

func TestQueueWaitsForWorkerAndBounds(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t, dispatch.WithQueueLimit(2))
	ctx := context.Background()
	t1, err := f.master.Submit(ctx, dispatch.Job{Type: "echo", Payload: "one"})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	t2, err := f.master.Submit(cctx, dispatch.Job{Type: "echo", Payload: "two"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.master.Submit(ctx, dispatch.Job{Type: "echo"})
	if !errors.Is(err, dispatch.ErrQueueFull) || !strings.Contains(err.Error(), "echo") {
		t.Fatalf("third job: %v, want ErrQueueFull naming the type", err)
	}
	cancel() // a queued job's context ends: it leaves the queue with the context's error
	if _, err := t2.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled queued job: %v", err)
	}
	if s := f.master.Stats(); s.Queued != 1 {
		t.Fatalf("queued = %d after cancel, want 1", s.Queued)
	}
	f.startWorker(map[string]worker.Handler{"echo": echo})
	if res, err := t1.Wait(ctx); err != nil || string(res) != "one" {
		t.Fatalf("queued job after a worker appeared: %q %v", res, err)
	}
}

func TestConcurrencyBoundedByCapacity(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	var mu sync.Mutex
	running, peak := 0, 0
	sawDeadline := true
	h := func(ctx context.Context, job *worker.Job) (any, error) {
		mu.Lock()
		running++
		peak = max(peak, running)
		if _, ok := ctx.Deadline(); !ok {
			sawDeadline = false
		}
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // work, not synchronisation
		mu.Lock()
		running--
		mu.Unlock()
		return nil, nil
	}
	f.startWorker(map[string]worker.Handler{"work": h}, worker.WithConcurrency(3))
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "work", Timeout: 10 * time.Second})
			if err == nil {
				_, err = tk.Wait(context.Background())
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if peak > 3 || peak < 2 {
		t.Fatalf("peak concurrency %d, want 2..3 (capacity 3)", peak)
	}
	if !sawDeadline {
		t.Fatal("handler context had no deadline although the job had a timeout")
	}
}

// TestWorkerSeesTheEarlierDeadline: the handler's context carries the earlier of the
// caller's deadline and the job's timeout.
func TestWorkerSeesTheEarlierDeadline(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	deadlines := make(chan time.Time, 1)
	f.startWorker(map[string]worker.Handler{"deadline": func(ctx context.Context, _ *worker.Job) (any, error) {
		d, _ := ctx.Deadline() // zero if none
		deadlines <- d
		return nil, nil
	}})
	for _, tc := range []struct {
		name        string
		ctxTimeout  time.Duration // 0: no deadline on the caller's context
		jobTimeout  time.Duration
		wantWithin  time.Duration // the deadline lies at most this far ahead
		wantAtLeast time.Duration // and at least this far
	}{
		{"caller's deadline only", time.Minute, 0, time.Minute, 50 * time.Second},
		{"caller's deadline earlier", time.Minute, time.Hour, time.Minute, 50 * time.Second},
		{"job timeout earlier", time.Hour, time.Minute, time.Minute, 50 * time.Second},
	} {
		ctx := context.Background()
		if tc.ctxTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
			defer cancel()
		}
		start := time.Now()
		tk, err := f.master.Submit(ctx, dispatch.Job{Type: "deadline", Timeout: tc.jobTimeout})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tk.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		d := recv(t, deadlines, "the handler's deadline")
		if d.IsZero() || d.Sub(start) > tc.wantWithin || d.Sub(start) < tc.wantAtLeast {
			t.Errorf("%s: handler deadline %v after submit, want between %v and %v", tc.name, d.Sub(start), tc.wantAtLeast, tc.wantWithin)
		}
	}
}

// Submitting with a context that is already cancelled, or cancelled concurrently, must
// resolve the ticket with the context's error and never crash the master.
func TestSubmitWithCancelledContext(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	f.startWorker(map[string]worker.Handler{"echo": echo}, worker.WithConcurrency(2))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	var wg sync.WaitGroup
	for i := range 2000 {
		typ := "echo"
		if i%2 == 1 {
			typ = "nobody" // queued: no worker handles it
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := cancelled
			if i%3 == 0 { // cancelled while Submit runs
				c, cancel := context.WithCancel(context.Background())
				go cancel()
				ctx = c
			}
			tk, err := f.master.Submit(ctx, dispatch.Job{Type: typ, Payload: "x"})
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := tk.Wait(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("job %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if s := f.master.Stats(); s.Queued != 0 || s.InFlight != 0 || s.Done+s.Cancelled != 2000 || s.Failed != 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

// TestWaitWorkers: WaitWorkers returns once enough workers registered, and with its
// context's error, saying how many there were, when they do not.
func TestWaitWorkers(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := f.master.WaitWorkers(ctx, 1); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "0 of 1") {
		t.Fatalf("no worker: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- f.master.WaitWorkers(context.Background(), 2) }()
	f.startWorker(map[string]worker.Handler{"echo": echo})
	select {
	case err := <-done:
		t.Fatalf("returned with one worker of two: %v", err)
	default:
	}
	f.startWorker(map[string]worker.Handler{"echo": echo})
	if err := recv(t, done, "WaitWorkers with two workers"); err != nil {
		t.Fatal(err)
	}
}
