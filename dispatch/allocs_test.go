package dispatch_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

// maxAllocsPerRemoteCall bounds the allocations of one remote call, counted over the
// whole process (the Client, the master and the worker all run here): a 64-byte echo
// job, caller → master → worker → master → caller. It was 47 before the cuts it guards
// (a context.AfterFunc per call, a struct per wait, a string per envelope field, a
// closure per resolution, a copy of every message, …), 19 after them, and 18 once the
// master's job envelope went out without an interface box (banio.WriteParts), 17 once
// the worker ran jobs on goroutines it keeps (runPool), and 15 once the Client's call
// and the master's attempt became their own wait callbacks (banio.SetWaiterView, no
// method values); the slack absorbs what heartbeats and the fault proxy between
// worker and master allocate meanwhile.
const maxAllocsPerRemoteCall = 16

func TestRemoteCallAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own account")
	}
	leakcheck.Check(t)
	// Retention bounded below the warm-up's count: the outcomes' ring and index are
	// full before the measured calls, as on a busy master, rather than doubling
	// (a growth every call of this test paid for, and none of a master past it).
	f := newFleet(t, dispatch.WithRetainedLimits(128, 0))
	f.startWorker(map[string]worker.Handler{"echo": echoBytes}, worker.WithConcurrency(4))
	c := newClient(t, f.addr)
	ctx, cancel := context.WithCancel(context.Background()) // a context that can end, as a caller's does
	defer cancel()
	payload := make([]byte, 64)
	call := func() {
		res, err := c.Call(ctx, "echo", payload)
		if err != nil || len(res) != len(payload) {
			t.Fatalf("call: %d bytes, %v", len(res), err)
		}
	}
	for range 200 { // the wait tables, retained outcomes and buffer pools grow here
		call()
	}
	allocs := testing.AllocsPerRun(300, call)
	t.Logf("%.1f allocations per remote call", allocs)
	if allocs > maxAllocsPerRemoteCall {
		t.Errorf("%.1f allocations per remote call, want at most %d", allocs, maxAllocsPerRemoteCall)
	}
	bytes := bytesPerRun(300, call)
	t.Logf("%.0f bytes allocated per remote call", bytes)
	if bytes > maxBytesPerRemoteCall {
		t.Errorf("%.0f bytes allocated per remote call, want at most %d", bytes, maxBytesPerRemoteCall)
	}
}

// maxBytesPerRemoteCall bounds the heap bytes one remote call allocates, counted like
// its allocations (the fault proxy and the test's own ids included, so it reads more
// than bench/'s dispatch-w4, whose target is nats-w4's bytes per call). It was about
// 2,043 with a 416-byte job record and retention still growing, 1,979 once the job's
// four time.Time fields became instants (a 352-byte record); with retention full
// (below), 1,760, 1,742 once jobs ran on the worker's kept goroutines, and 1,710 without
// the wait callbacks' method values.
const maxBytesPerRemoteCall = 1_760

// bytesPerRun is testing.AllocsPerRun for bytes: the mean heap bytes allocated by one
// run of f, over runs runs, on one P.
func bytesPerRun(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}
