package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// TestApplyThen: records queued without waiting are applied in call order with those
// of Apply, each callback hears of its own records' fate once they are durable, and a
// closed store refuses the call without calling back.
func TestApplyThen(t *testing.T) {
	leakcheck.Check(t)
	b, path := openTemp(t)
	mem := NewMem()
	for _, s := range []Store{b, mem} {
		results := make(chan error, 3)
		note := func(err error) { results <- err }
		// Submitted then started without waiting; a second submission of the same id
		// is refused alone; Apply afterwards sees the first two applied.
		if err := s.ApplyThen(note, Submitted(Spec{ID: "a", Type: "t"})); err != nil {
			t.Fatal(err)
		}
		if err := s.ApplyThen(note, AttemptStarted("a", 1, "w")); err != nil {
			t.Fatal(err)
		}
		if err := s.ApplyThen(note, Submitted(Spec{ID: "a", Type: "t"})); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, AttemptEnded("a", 1, false, "orphan")); err != nil {
			t.Fatalf("%T: Apply after ApplyThen: %v (not applied in call order?)", s, err)
		}
		var errs []error
		for range 3 {
			errs = append(errs, <-results)
		}
		refused := 0
		for _, err := range errs {
			switch {
			case err == nil:
			case errors.Is(err, ErrInvalid):
				refused++
			default:
				t.Fatalf("%T: unexpected %v", s, err)
			}
		}
		if refused != 1 {
			t.Fatalf("%T: %d calls refused, want the second submission alone: %v", s, refused, errs)
		}
		if js := s.Lookup("a"); js.Phase != PhaseQueued || js.Attempt != 1 {
			t.Fatalf("%T: job is %+v", s, js)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.ApplyThen(func(error) { t.Error("called back after a refused call") }, Submitted(Spec{ID: "b", Type: "t"})); !errors.Is(err, ErrClosed) {
			t.Fatalf("%T: ApplyThen after Close: %v", s, err)
		}
	}
	b2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if js := b2.Lookup("a"); js.Phase != PhaseQueued || js.Attempt != 1 {
		t.Fatalf("after reopening, the job is %+v", js)
	}
}

// TestApplyThenInOrder: callbacks come in the order of the calls, however many commits
// are in flight at once (flight.go), so that a caller's later record is never reported
// durable before an earlier one.
func TestApplyThenInOrder(t *testing.T) {
	leakcheck.Check(t)
	b, _ := openTemp(t, WithMaxBatch(20)) // many small commits, two in flight at a time
	defer b.Close()
	const n = 3000
	var mu sync.Mutex
	var got []int
	all := make(chan struct{})
	for i := range n {
		err := b.ApplyThen(func(err error) {
			if err != nil {
				t.Errorf("call %d: %v", i, err)
			}
			mu.Lock()
			got = append(got, i)
			if len(got) == n {
				close(all)
			}
			mu.Unlock()
		}, Submitted(Spec{ID: fmt.Sprintf("job-%05d", i), Type: "t"}))
		if err != nil {
			t.Fatal(err)
		}
	}
	<-all
	for i, v := range got {
		if v != i {
			t.Fatalf("callback %d was call %d's: out of order", i, v)
		}
	}
	if st := b.Stats(); st.Commits < n/20 {
		t.Fatalf("%d commits for %d calls of at most 20 records", st.Commits, n)
	}
}

// TestApplyLater: records nobody waits for ride with the next commit somebody does
// wait for (one commit, one fdatasync for both), in call order, and are committed on
// their own once they have waited WithMaxLazy.
func TestApplyLater(t *testing.T) {
	leakcheck.Check(t)
	b, _ := openTemp(t, WithMaxLazy(time.Hour)) // held back until an Apply comes
	defer b.Close()
	if err := b.Apply(ctx, Submitted(Spec{ID: "a", Type: "t"})); err != nil {
		t.Fatal(err)
	}
	before := b.Stats().Commits
	later := make(chan error, 1)
	if err := b.ApplyLater(func(err error) { later <- err }, AttemptStarted("a", 1, "w")); err != nil {
		t.Fatal(err)
	}
	// The Apply's records come after ApplyLater's: refused if they were not applied.
	if err := b.Apply(ctx, AttemptEnded("a", 1, false, "lost")); err != nil {
		t.Fatalf("Apply after ApplyLater: %v (not applied in call order?)", err)
	}
	if err := <-later; err != nil {
		t.Fatal(err)
	}
	if n := b.Stats().Commits - before; n != 1 {
		t.Fatalf("%d commits for a lazy call and the Apply after it, want 1", n)
	}

	// Alone, they wait out WithMaxLazy, then commit.
	c, _ := openTemp(t, WithMaxLazy(20*time.Millisecond))
	defer c.Close()
	if err := c.ApplyLater(func(err error) { later <- err }, Submitted(Spec{ID: "b", Type: "t"})); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-later:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lazy call alone was never committed")
	}
	if js := c.Lookup("b"); js.Phase != PhaseQueued {
		t.Fatalf("b is %v", js.Phase)
	}
}
