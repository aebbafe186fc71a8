package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/worker"
)

// fleet is a fleettest.Fleet under the names dispatch's tests use. It is built on the
// public package because an external test package may import it (fleettest imports
// dispatch, which dispatch's internal tests could not).
type fleet struct {
	*fleettest.Fleet
	t      testing.TB
	master *dispatch.Master // the running master (durableFleet.restart sets the next)
	addr   string
}

// newFleet starts a master. Heartbeats are short so lost workers are noticed fast.
func newFleet(t testing.TB, opts ...dispatch.Option) *fleet {
	t.Helper()
	return newFleetIO(t, nil, opts...)
}

// newFleetIO is newFleet with banio options for the master's server (frame limits…).
func newFleetIO(t testing.TB, bopts []banio.Option, opts ...dispatch.Option) *fleet {
	t.Helper()
	ft := fleettest.New(t, nil, fleettest.WithServerBanIO(bopts...), fleettest.WithMasterOptions(opts...))
	return &fleet{Fleet: ft, t: t, master: ft.Master(), addr: ft.Addr()}
}

// startWorker runs a worker with handlers until the test ends, through a link of its
// own (fleettest.Worker.Cut); it returns once the master has registered it.
func (f *fleet) startWorker(handlers map[string]worker.Handler, opts ...worker.Option) *fleettest.Worker {
	f.t.Helper()
	return f.StartWorker(handlers, opts...)
}

// awaitWorkers waits until cond, which reads the master's workers, holds: it looks
// again at every registration or loss of a worker, for 10 s at most.
func (f *fleet) awaitWorkers(what string, cond func() bool) {
	f.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		changed := f.master.WorkersChanged()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			f.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// registered counts the master's registrations of worker id (a reconnect adds one).
func (f *fleet) registered(id string) int {
	n := 0
	for _, w := range f.master.Workers() {
		if w.ID == id {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds, failing the test after 10 s. Used only where no
// event exists to wait on (queue and store counters, a Client's connection state).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func echo(ctx context.Context, job *worker.Job) (any, error) { return job.Payload, nil }

// mixedHandlers serves "ok" (echo), "fail" (a handler error) and "wait" (signals
// started, then runs until its context ends): the workload of the tests that count
// outcomes.
func mixedHandlers(started chan<- struct{}) map[string]worker.Handler {
	return map[string]worker.Handler{
		"ok":   echo,
		"fail": func(context.Context, *worker.Job) (any, error) { return nil, errors.New("no") },
		"wait": func(ctx context.Context, _ *worker.Job) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}
}
