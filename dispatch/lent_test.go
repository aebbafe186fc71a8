package dispatch_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

// TestRemoteResultsIntactWhileFramesFollow: the master, the worker and the Client read
// submissions, jobs and replies lent from their read buffers (banio's view handlers
// and waits) and copy what they keep. Were anything kept uncopied, frames that follow
// would overwrite it: many callers with payloads of their own, of sizes that travel in
// one read buffer and in several, must each get exactly their own payload back, and so
// must in-process Tickets that follow the same jobs; jobs that wait in the queue (more
// callers than slots) must reach their worker intact; and the outcomes the master
// retains must be intact when asked for again by id.
func TestRemoteResultsIntactWhileFramesFollow(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	for range 2 {
		f.startWorker(map[string]worker.Handler{"echo": echoBytes}, worker.WithConcurrency(2))
	}
	c := newClient(t, f.addr)
	sizes := []int{0, 9, 64, 700, 5000, 70000}
	const callers, calls = 16, 40
	payload := func(caller, seq int) []byte {
		size := sizes[(caller+seq)%len(sizes)]
		p := make([]byte, size)
		for i := 0; i+8 <= size; i += 8 {
			binary.LittleEndian.PutUint64(p[i:], uint64(caller)<<48|uint64(seq)<<24|uint64(i))
		}
		return p
	}
	id := func(caller, seq int) string { return fmt.Sprintf("intact-%d-%d", caller, seq) }
	call := func(caller, seq int) error {
		p := payload(caller, seq)
		tk, err := c.Submit(context.Background(), dispatch.Job{ID: id(caller, seq), Type: "echo", Payload: p})
		if err != nil {
			return err
		}
		// The same id submitted in process follows the job with a Ticket of its own
		// (or, once it resolved, gets the retained outcome).
		local, err := f.master.Submit(context.Background(), dispatch.Job{ID: id(caller, seq), Type: "echo", Payload: p})
		if err != nil {
			return err
		}
		for _, t := range []*dispatch.Ticket{tk, local} {
			res, err := t.Wait(context.Background())
			if err != nil || !bytes.Equal(res, p) {
				return fmt.Errorf("job %s (%d bytes): got %d bytes, %v", id(caller, seq), len(p), len(res), err)
			}
		}
		return nil
	}
	run := func(seqs func(caller int) []int) {
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for caller := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, seq := range seqs(caller) {
					if err := call(caller, seq); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	all := make([]int, calls)
	for i := range all {
		all[i] = i
	}
	run(func(int) []int { return all })
	// Asked again by id: answered from the outcomes the master retained.
	done := f.master.Stats().Done
	run(func(caller int) []int { return []int{caller % calls, (caller * 7) % calls} })
	if again := f.master.Stats().Done; again != done {
		t.Fatalf("jobs ran again (%d resolved, then %d) instead of answering from retained outcomes", done, again)
	}
}
