package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/banfleet/banfleet/worker"
)

// echo returns its payload unchanged: a liveness and round-trip probe.
func echo(_ context.Context, job *worker.Job) (any, error) {
	return job.Payload, nil
}

// maxSleep bounds a sleep job, so a typo cannot park a slot for years.
const maxSleep = 24 * time.Hour

// sleep waits for the duration in its payload ("250ms", raw or JSON-quoted) or
// until its context ends, and returns "slept 250ms". It reports progress once, as
// it starts (0 of the duration in milliseconds). It is the simplest job that
// occupies a slot, for trying out routing, timeouts, cancellation and drains.
func sleep(ctx context.Context, job *worker.Job) (any, error) {
	s := strings.TrimSpace(string(job.Payload))
	if u, err := strconv.Unquote(s); err == nil {
		s = u
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > maxSleep {
		return nil, &worker.Error{Code: "bad_payload", Err: fmt.Errorf("sleep wants a duration between 0 and %s such as \"250ms\", not %q", maxSleep, s)}
	}
	job.Progress(0, d.Milliseconds(), "sleeping "+d.String())
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return "slept " + d.String(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
