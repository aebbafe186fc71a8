package dispatch_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
)

// sizedJob is a job of type typ whose queued size is exactly dispatch.QueuedJobOverhead
// + 1,024 bytes.
func sizedJob(id, typ string) dispatch.Job {
	return dispatch.Job{ID: id, Type: typ, Payload: make([]byte, 1024-len(id)-len(typ))}
}

const sizedJobBytes = dispatch.QueuedJobOverhead + 1024

// TestQueueBytesPerTypeBudget: the bytes waiting in one type's queue are bounded; a job
// past the budget is refused with ErrQueueFull saying which budget and how to raise it,
// other types are not affected, and a job leaving the queue gives its bytes back.
func TestQueueBytesPerTypeBudget(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t, dispatch.WithQueueBytesPerType(2*sizedJobBytes))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := f.master.Submit(ctx, sizedJob("a1", "big"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.master.Submit(context.Background(), sizedJob("a2", "big")); err != nil {
		t.Fatal(err)
	}
	_, err = f.master.Submit(context.Background(), sizedJob("a3", "big"))
	if !errors.Is(err, dispatch.ErrQueueFull) || !strings.Contains(err.Error(), `"big"`) ||
		!strings.Contains(err.Error(), "per type") || !strings.Contains(err.Error(), "WithQueueBytesPerType") {
		t.Fatalf("third job past the per-type budget: %v", err)
	}
	if _, err := f.master.Submit(context.Background(), sizedJob("b1", "other")); err != nil {
		t.Fatalf("another type's queue is not affected: %v", err)
	}
	cancel()
	if _, err := first.Wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if _, err := f.master.Submit(context.Background(), sizedJob("a3", "big")); err != nil {
		t.Fatalf("a job that left the queue gave its bytes back: %v", err)
	}
	if err := dispatch.IndexError(f.master); err != nil {
		t.Fatal(err)
	}
}

// TestQueueBytesTotalBudget: the bytes waiting in all queues together are bounded, for
// remote submissions as for local ones.
func TestQueueBytesTotalBudget(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t, dispatch.WithQueueBytesTotal(3*sizedJobBytes))
	for _, id := range []string{"x1", "x2"} {
		if _, err := f.master.Submit(context.Background(), sizedJob(id, "tx")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.master.Submit(context.Background(), sizedJob("y1", "ty")); err != nil {
		t.Fatal(err)
	}
	_, err := f.master.Submit(context.Background(), sizedJob("z1", "tz"))
	if !errors.Is(err, dispatch.ErrQueueFull) || !strings.Contains(err.Error(), "total") || !strings.Contains(err.Error(), "WithQueueBytesTotal") {
		t.Fatalf("a fresh type past the total budget: %v", err)
	}
	c := newClient(t, f.addr)
	tk, err := c.Submit(context.Background(), sizedJob("z2", "tz"))
	if err == nil {
		_, err = tk.Wait(context.Background())
	}
	if !errors.Is(err, dispatch.ErrQueueFull) || !strings.Contains(err.Error(), "WithQueueBytesTotal") {
		t.Fatalf("remote submission past the total budget: %v", err)
	}
	if s := f.master.Stats(); s.Queued != 3 {
		t.Fatalf("Stats = %+v, want the 3 admitted jobs queued", s)
	}
	if err := dispatch.IndexError(f.master); err != nil {
		t.Fatal(err)
	}
}
