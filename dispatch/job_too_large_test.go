package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

func TestJobTooLargeFailsAtOnce(t *testing.T) {
	for _, traced := range []bool{false, true} {
		t.Run(fmt.Sprintf("traced=%v", traced), func(t *testing.T) {
			leakcheck.Check(t)
			var runs atomic.Int64
			f, c := smallFrameFleet(t, traced, map[string]worker.Handler{
				"echo":  echo,
				"count": func(context.Context, *worker.Job) (any, error) { runs.Add(1); return nil, nil },
			})
			assertTooLarge := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, dispatch.ErrJobTooLarge) || errors.Is(err, dispatch.ErrWorkerLost) || !strings.Contains(err.Error(), "PutBlob") {
					t.Fatalf("%s: %v; want ErrJobTooLarge suggesting a blob, not a lost worker", what, err)
				}
				if n := runs.Load(); n != 0 {
					t.Fatalf("%s: the handler ran %d times", what, n)
				}
				assertNothingHeld(t, f)
			}

			// In-process: the envelope of a payload as large as a frame cannot fit.
			tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "count", Payload: randomBytes(smallFrame)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = outcome(t, tk)
			assertTooLarge("master", err)

			// Remotely, the client finds out itself: its submission does not fit either.
			_, err = c.Submit(context.Background(), dispatch.Job{Type: "count", Payload: randomBytes(smallFrame)})
			if !errors.Is(err, banio.ErrFrameTooLarge) {
				t.Fatalf("client: a submission larger than a frame: %v", err)
			}
			assertTooLarge("client", err)

			if !traced {
				return
			}
			// With tracing, the master's job envelope carries the trace context that
			// the untraced client's submission did not: the largest payload the client
			// can submit does not fit the master's envelope to the worker.
			for size := smallFrame; size > smallFrame-1024; size -= 8 {
				tk, err := c.Submit(context.Background(), dispatch.Job{Type: "count", Payload: randomBytes(size)})
				if errors.Is(err, banio.ErrFrameTooLarge) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				_, err = outcome(t, tk)
				assertTooLarge(fmt.Sprintf("client, traced master, %d-byte payload", size), err)
				return
			}
			t.Fatal("no payload near the frame limit could be submitted")
		})
	}
}
