package worker

import (
	"testing"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// newTestPool returns a pool whose jobs run exec, and a channel that hears, after each
// job, whether its goroutine parked. stop is a cleanup.
func newTestPool(t *testing.T, max int, exec func(*task)) (*runPool, <-chan bool) {
	t.Helper()
	after := make(chan bool, 16)
	p := &runPool{exec: exec, max: max, afterJob: func(parked bool) { after <- parked }}
	t.Cleanup(p.stop)
	return p, after
}

func TestRunPoolReusesAParkedGoroutine(t *testing.T) {
	leakcheck.Check(t)
	ran := 0
	p, after := newTestPool(t, 4, func(*task) { ran++ })
	p.run(&task{})
	if !<-after {
		t.Fatal("the first job's goroutine did not park")
	}
	first := p.idle[0]
	p.run(&task{})
	if !<-after {
		t.Fatal("the second job's goroutine did not park")
	}
	if len(p.idle) != 1 || p.idle[0] != first {
		t.Fatalf("%d goroutines parked after two jobs in a row; want the first one, reused", len(p.idle))
	}
	if ran != 2 {
		t.Fatalf("%d jobs ran, want 2", ran)
	}
}

func TestRunPoolParksAtMostItsMax(t *testing.T) {
	leakcheck.Check(t)
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	p, after := newTestPool(t, 2, func(*task) { started <- struct{}{}; <-release })
	for range 4 {
		p.run(&task{})
	}
	for range 4 {
		<-started // four jobs at once: four goroutines
	}
	close(release)
	parked := 0
	for range 4 {
		if <-after {
			parked++
		}
	}
	if parked != 2 || len(p.idle) != 2 {
		t.Fatalf("%d goroutines parked (%d idle), want the max of 2", parked, len(p.idle))
	}
}

func TestRunPoolStopEndsParkedGoroutines(t *testing.T) {
	leakcheck.Check(t) // fails if a parked goroutine outlives stop
	p, after := newTestPool(t, 4, func(*task) {})
	p.run(&task{})
	<-after
	p.stop()
	p.run(&task{}) // after stop: runs on a goroutine of its own, which ends with it
	if <-after {
		t.Fatal("a goroutine parked after stop")
	}
}
