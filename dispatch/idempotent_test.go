package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

// execCounter is a handler that counts its executions per job id and, while gated,
// holds every job until release.
type execCounter struct {
	mu      sync.Mutex
	runs    map[string]int
	started chan string
	gate    chan struct{}
}

func newExecCounter(gated bool) *execCounter {
	e := &execCounter{runs: make(map[string]int), started: make(chan string, 1024)}
	if gated {
		e.gate = make(chan struct{})
	}
	return e
}

func (e *execCounter) handle(ctx context.Context, j *worker.Job) (any, error) {
	e.mu.Lock()
	e.runs[j.ID]++
	e.mu.Unlock()
	e.started <- j.ID
	if e.gate != nil {
		select {
		case <-e.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return "r:" + string(j.Payload), nil
}

func (e *execCounter) count(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs[id]
}

func wantResult(t *testing.T, tk *dispatch.Ticket, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := tk.Wait(ctx)
	if err != nil || string(res) != want {
		t.Fatalf("ticket %s: %q, %v; want %q", tk.ID(), res, err, want)
	}
}

// TestIdempotentIDsInProcess: submitting an id the master holds, queued, running, or
// resolved and retained, attaches to that job: the same outcome, one execution. The
// same id with other work is a conflict.
func TestIdempotentIDsInProcess(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	e := newExecCounter(true)
	f.startWorker(map[string]worker.Handler{"count": e.handle}, worker.WithConcurrency(1))
	ctx := context.Background()
	submit := func(id, payload string) (*dispatch.Ticket, error) {
		return f.master.Submit(ctx, dispatch.Job{ID: id, Type: "count", Payload: payload})
	}
	running, err := submit("running", "a")
	if err != nil {
		t.Fatal(err)
	}
	recv(t, e.started, "first job running")
	queued, err := submit("queued", "b")
	if err != nil {
		t.Fatal(err)
	}
	// The worker runs one job at a time: "queued" waits.
	runningAgain, err := submit("running", "a")
	if err != nil {
		t.Fatalf("resubmitting a running job's id: %v", err)
	}
	queuedAgain, err := submit("queued", "b")
	if err != nil {
		t.Fatalf("resubmitting a queued job's id: %v", err)
	}
	if _, err := submit("running", "other payload"); !errors.Is(err, dispatch.ErrIDConflict) {
		t.Fatalf("same id, other payload: %v, want ErrIDConflict", err)
	}
	if _, err := f.master.Submit(ctx, dispatch.Job{ID: "queued", Type: "other", Payload: "b"}); !errors.Is(err, dispatch.ErrIDConflict) {
		t.Fatalf("same id, other type: %v, want ErrIDConflict", err)
	}
	if st := f.master.Stats(); st.Queued != 1 {
		t.Fatalf("resubmissions queued jobs of their own: %+v", st)
	}
	close(e.gate)
	for _, tk := range []*dispatch.Ticket{running, runningAgain} {
		wantResult(t, tk, "r:a")
	}
	for _, tk := range []*dispatch.Ticket{queued, queuedAgain} {
		wantResult(t, tk, "r:b")
	}
	// Resolved and retained: the outcome at once, without running.
	again, err := submit("running", "a")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-again.Done():
	default:
		t.Fatal("a retained outcome did not resolve the resubmission at once")
	}
	wantResult(t, again, "r:a")
	if _, err := submit("queued", "c"); !errors.Is(err, dispatch.ErrIDConflict) {
		t.Fatalf("a retained id with another payload: %v, want ErrIDConflict", err)
	}
	if e.count("running") != 1 || e.count("queued") != 1 {
		t.Fatalf("executions: running %d, queued %d; want 1 each", e.count("running"), e.count("queued"))
	}
}

// TestRetentionExpiresAndIsBounded: after the retention period an id is new again and
// runs anew; past the count bound the oldest outcome is forgotten first.
func TestRetentionExpiresAndIsBounded(t *testing.T) {
	leakcheck.Check(t)
	t.Run("expiry", func(t *testing.T) {
		f := newFleet(t, dispatch.WithResultRetention(20*time.Millisecond))
		e := newExecCounter(false)
		f.startWorker(map[string]worker.Handler{"count": e.handle})
		ctx := context.Background()
		tk, err := f.master.Submit(ctx, dispatch.Job{ID: "x", Type: "count", Payload: "p"})
		if err != nil {
			t.Fatal(err)
		}
		wantResult(t, tk, "r:p")
		// Resubmissions attach while the outcome is retained, and run the job once
		// it is forgotten; the timer also releases it from memory.
		waitFor(t, "the id to be new again", func() bool {
			tk, err := f.master.Submit(ctx, dispatch.Job{ID: "x", Type: "count", Payload: "p"})
			if err != nil {
				t.Fatal(err)
			}
			wantResult(t, tk, "r:p")
			return e.count("x") == 2
		})
		waitFor(t, "expired outcomes released", func() bool { n, b := dispatch.Retained(f.master); return n == 0 && b == 0 })
	})
	t.Run("count bound", func(t *testing.T) {
		f := newFleet(t, dispatch.WithRetainedLimits(3, 0))
		e := newExecCounter(false)
		f.startWorker(map[string]worker.Handler{"count": e.handle})
		ctx := context.Background()
		for i := range 5 {
			tk, err := f.master.Submit(ctx, dispatch.Job{ID: fmt.Sprint("j", i), Type: "count", Payload: "p"})
			if err != nil {
				t.Fatal(err)
			}
			wantResult(t, tk, "r:p")
		}
		if n, _ := dispatch.Retained(f.master); n != 3 {
			t.Fatalf("%d outcomes retained, want 3", n)
		}
		for _, id := range []string{"j0", "j4"} {
			tk, err := f.master.Submit(ctx, dispatch.Job{ID: id, Type: "count", Payload: "p"})
			if err != nil {
				t.Fatal(err)
			}
			wantResult(t, tk, "r:p")
		}
		if e.count("j0") != 2 || e.count("j4") != 1 {
			t.Fatalf("executions: j0 %d (oldest, forgotten: want 2), j4 %d (retained: want 1)", e.count("j0"), e.count("j4"))
		}
	})
	t.Run("byte bound", func(t *testing.T) {
		f := newFleet(t, dispatch.WithRetainedLimits(0, 1000))
		f.startWorker(map[string]worker.Handler{"count": newExecCounter(false).handle})
		for i := range 20 {
			tk, err := f.master.Submit(context.Background(), dispatch.Job{ID: fmt.Sprint("j", i), Type: "count", Payload: "p"})
			if err != nil {
				t.Fatal(err)
			}
			wantResult(t, tk, "r:p")
		}
		if n, b := dispatch.Retained(f.master); b > 1000 || n == 0 || n >= 20 {
			t.Fatalf("%d outcomes of %d bytes retained under a 1000-byte bound", n, b)
		}
	})
}

// A job whose id was made up for it (by the master, or by a Client, which sends its
// reply key as the id) is never submitted again with other work, so its payload is not
// hashed; a job with an id of the caller's is, pending and retained, and other work
// under that id is still a conflict.
func TestOnlyChosenIDsHashTheirPayload(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	e := newExecCounter(true)
	f.startWorker(map[string]worker.Handler{"count": e.handle}, worker.WithConcurrency(4))
	client := f.Client()
	ctx := context.Background()
	type submitted struct {
		what   string
		id     string
		hashed bool
	}
	var cases []submitted
	var tickets []*dispatch.Ticket
	submit := func(what string, hashed bool, tk *dispatch.Ticket, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		tickets = append(tickets, tk)
		cases = append(cases, submitted{what, tk.ID(), hashed})
		recv(t, e.started, what+" running")
	}
	tk, err := f.master.Submit(ctx, dispatch.Job{Type: "count", Payload: "a"})
	submit("in-process, no id", false, tk, err)
	tk, err = f.master.Submit(ctx, dispatch.Job{ID: "mine", Type: "count", Payload: "b"})
	submit("in-process, chosen id", true, tk, err)
	tk, err = client.Submit(ctx, dispatch.Job{Type: "count", Payload: "c"})
	submit("remote, no id", false, tk, err)
	tk, err = client.Submit(ctx, dispatch.Job{ID: "theirs", Type: "count", Payload: "d"})
	submit("remote, chosen id", true, tk, err)
	check := func(when string) {
		t.Helper()
		for _, c := range cases {
			hashed, found := dispatch.PayloadHashed(f.master, c.id)
			if !found || hashed != c.hashed {
				t.Errorf("%s, %s: hashed %v (held: %v), want %v", when, c.what, hashed, found, c.hashed)
			}
		}
	}
	check("pending")
	if _, err := f.master.Submit(ctx, dispatch.Job{ID: "mine", Type: "count", Payload: "other"}); !errors.Is(err, dispatch.ErrIDConflict) {
		t.Fatalf("a chosen id with other work while pending: %v, want ErrIDConflict", err)
	}
	close(e.gate)
	for i, tk := range tickets {
		wantResult(t, tk, "r:"+string("abcd"[i]))
	}
	check("retained")
	if _, err := f.master.Submit(ctx, dispatch.Job{ID: "theirs", Type: "count", Payload: "other"}); !errors.Is(err, dispatch.ErrIDConflict) {
		t.Fatalf("a chosen id with other work once retained: %v, want ErrIDConflict", err)
	}
}
