package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

func TestResultTooLargeFailsAtOnce(t *testing.T) {
	for _, traced := range []bool{false, true} {
		t.Run(fmt.Sprintf("traced=%v", traced), func(t *testing.T) {
			leakcheck.Check(t)
			var runs atomic.Int64
			f, c := smallFrameFleet(t, traced, map[string]worker.Handler{
				"echo": echo,
				"big": func(context.Context, *worker.Job) (any, error) {
					runs.Add(1)
					return randomBytes(smallFrame + 1), nil
				},
			})
			for _, s := range submitters(f, c) {
				runs.Store(0)
				tk, err := s.submit(context.Background(), dispatch.Job{Type: "big"})
				if err != nil {
					t.Fatal(err)
				}
				_, err = outcome(t, tk)
				var re *dispatch.RemoteError
				if !errors.As(err, &re) || re.Code != dispatch.CodeResultTooLarge || re.Retryable || re.WorkerID != "w" ||
					!strings.Contains(re.Message, strconv.Itoa(smallFrame)) || !strings.Contains(re.Message, "WithMaxFrameSize") {
					t.Fatalf("%s: a result larger than a frame: %v; want a non-retryable %s from worker w naming the limit and the way out", s.name, err, dispatch.CodeResultTooLarge)
				}
				if n := runs.Load(); n != 1 {
					t.Fatalf("%s: the handler ran %d times, want once", s.name, n)
				}
				assertNothingHeld(t, f)
				if res, err := c.Call(context.Background(), "echo", "next"); err != nil || string(res) != "next" {
					t.Fatalf("%s: the job after: %q %v", s.name, res, err)
				}
			}
		})
	}
}

// A result that fits the worker's reply to the master but not the master's reply to
// its remote caller, whose header is larger (the caller's 36-byte wait key against
// the worker's short job key).
func TestReplyTooLargeForClientFailsAtOnce(t *testing.T) {
	for _, traced := range []bool{false, true} {
		t.Run(fmt.Sprintf("traced=%v", traced), func(t *testing.T) {
			leakcheck.Check(t)
			f, c := smallFrameFleet(t, traced, map[string]worker.Handler{
				"echo": echo,
				"sized": func(_ context.Context, j *worker.Job) (any, error) {
					n, err := strconv.Atoi(string(j.Payload))
					return randomBytes(n), err
				},
			})
			// Results grow 4 bytes at a time, in a window about 30 bytes wide: the
			// first that does not reach the caller fits the worker's reply.
			for i, size := 0, smallFrame-400; size <= smallFrame; i, size = i+1, size+4 {
				tk, err := c.Submit(context.Background(), dispatch.Job{ID: "p" + strconv.Itoa(i), Type: "sized", Payload: strconv.Itoa(size)})
				if err != nil {
					t.Fatal(err)
				}
				res, err := outcome(t, tk)
				if err == nil {
					if len(res) != size {
						t.Fatalf("result of %d bytes arrived as %d", size, len(res))
					}
					continue
				}
				var re *dispatch.RemoteError
				if !errors.As(err, &re) || re.Code != dispatch.CodeResultTooLarge || re.Retryable || re.WorkerID != "" ||
					!strings.Contains(re.Message, "master cannot forward") || !strings.Contains(re.Message, strconv.Itoa(smallFrame)) {
					t.Fatalf("result of %d bytes: %v; want the master's non-retryable %s naming the limit", size, err, dispatch.CodeResultTooLarge)
				}
				assertNothingHeld(t, f)
				return
			}
			t.Fatal("every result up to the frame limit reached the client")
		})
	}
}
