package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/cenkalti/backoff/v4"
)

// What the remote mode adds to its dispatch.Client so that a sweep rides through a
// restart of its master, and gives up in words when the master stays away. The
// Client keeps its jobs across a lost connection by itself; each piece here covers
// something it does not do (yet), as its comment says.

// reconnectBackoff is the Client's reconnect policy. banio's default grows to 10 s
// (±50 %), so that a fleet of workers spreads its reconnects over a master's restart;
// a sweep is one client, which gains nothing by waiting that long and would see a
// restarted master up to 15 s late, or not within its reconnect budget at all. This
// one starts at 50 ms and grows to 1 s (a tenth of the budget, if less), with jitter,
// and never stops: the Client's reconnect budget decides when to give up.
func reconnectBackoff(budget time.Duration) func() backoff.BackOff {
	ceiling := min(time.Second, max(budget/10, 10*time.Millisecond))
	return func() backoff.BackOff {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval = min(50*time.Millisecond, ceiling)
		b.MaxInterval = ceiling
		b.RandomizationFactor = 0.5
		b.MaxElapsedTime = 0
		b.Reset() // from InitialInterval
		return b
	}
}

// rideRetryPause spaces the attempts of rideThrough when the connection keeps
// dropping.
const rideRetryPause = 50 * time.Millisecond

// rideThrough runs ask, a request to the master that fails when the connection drops
// under it (Client.PutBlob and Client.DeleteBlob do, unlike Submit: they are not kept
// across a reconnect), and runs it again after such a drop, until it is answered or
// the master has been unreachable for budget: then it fails with an error wrapping
// dispatch.ErrMasterLost. Only requests that may run twice belong here; blob uploads
// and deletions do (a blob is stored under its hash).
//
// Each attempt after a drop is bounded by what is left of the budget (a request
// written while the Client is disconnected waits for the next connection, however
// long that takes), and so is the first if boundFirst: a request that may start
// while the master is already away.
func rideThrough(ctx context.Context, budget time.Duration, boundFirst bool, ask func(context.Context) error) error {
	var deadline time.Time // of the budget: set once the master is known to be away
	if boundFirst {
		deadline = time.Now().Add(budget)
	}
	for {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if !deadline.IsZero() {
			actx, cancel = context.WithDeadline(ctx, deadline)
		}
		err := ask(actx)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return err
		case errors.Is(err, banio.ErrConnClosed):
			if deadline.IsZero() {
				deadline = time.Now().Add(budget)
			}
		case !deadline.IsZero() && errors.Is(err, context.DeadlineExceeded):
			// No answer within the budget.
		default:
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: the master was unreachable for %v (the reconnect budget): %w", dispatch.ErrMasterLost, budget, err)
		}
		select {
		case <-time.After(min(rideRetryPause, time.Until(deadline))):
		case <-ctx.Done():
			return err
		}
	}
}

