package dispatch_test

import (
	"context"
	"testing"

	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

// maxAllocsPerRemoteCall bounds the allocations of one remote call, counted over the
// whole process (the Client, the master and the worker all run here): a 64-byte echo
// job, caller → master → worker → master → caller. It was 47 before the cuts it guards
// (a context.AfterFunc per call, a struct per wait, a string per envelope field, a
// closure per resolution, a copy of every message, …), 19 after them, and 18 once the
// master's job envelope went out without an interface box (banio.WriteParts); the
// slack absorbs what heartbeats and the fault proxy between worker and master
// allocate meanwhile.
const maxAllocsPerRemoteCall = 20

func TestRemoteCallAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own account")
	}
	leakcheck.Check(t)
	f := newFleet(t)
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
}
