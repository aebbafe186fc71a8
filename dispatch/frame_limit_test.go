package dispatch_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/worker"
)

// Helpers for the tests of jobs, results and blobs that do not fit a banio frame: each
// such job must resolve at once, with an error that says so, and never be retried.

// smallFrame is the frame limit of these tests' master, workers and clients.
const smallFrame = 64 << 10

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // incompressible: a frame holds no more than its size
	return b
}

// smallFrameFleet starts a master and one worker ("w") with handlers, all limited to
// smallFrame, with tracing on or off, and a remote Client (untraced) limited alike.
func smallFrameFleet(t *testing.T, traced bool, handlers map[string]worker.Handler) (*fleet, *dispatch.Client) {
	t.Helper()
	var opts []dispatch.Option
	wopts := []worker.Option{worker.WithID("w"), worker.WithBanIO(banio.WithMaxFrameSize(smallFrame))}
	if traced {
		_, tp := newRecorder()
		opts = append(opts, dispatch.WithTracerProvider(tp))
		wopts = append(wopts, worker.WithTracerProvider(tp))
	}
	f := newFleetIO(t, []banio.Option{banio.WithMaxFrameSize(smallFrame)}, opts...)
	f.startWorker(handlers, wopts...)
	c, err := dispatch.NewClient(f.addr, dispatch.WithBanIO(banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond), banio.WithMaxFrameSize(smallFrame)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// One round trip first, so that the client's codec is settled before sizes matter.
	if _, err := c.Call(context.Background(), "echo", "warm up"); err != nil {
		t.Fatal(err)
	}
	return f, c
}

// outcome waits for a job submitted with context.Background(), failing the test if it
// has not resolved within 10 s.
func outcome(t *testing.T, tk *dispatch.Ticket) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := tk.Wait(ctx)
	if ctx.Err() != nil {
		t.Fatalf("job %s never resolved", tk.ID())
	}
	return res, err
}

// submitter is one of the two ways to submit a job.
type submitter struct {
	name   string
	submit func(context.Context, dispatch.Job) (*dispatch.Ticket, error)
}

func submitters(f *fleet, c *dispatch.Client) []submitter {
	return []submitter{{"master", f.master.Submit}, {"client", c.Submit}}
}

// assertNothingHeld fails unless the master holds no slot and retried nothing, and its
// worker is still connected (a job too large is not a lost worker).
func assertNothingHeld(t *testing.T, f *fleet) {
	t.Helper()
	if st := f.master.Stats(); st.InFlight != 0 || st.Retried != 0 || st.Workers != 1 {
		t.Fatalf("after the job: %d in flight, %d retried, %d workers; want 0, 0, 1", st.InFlight, st.Retried, st.Workers)
	}
}
