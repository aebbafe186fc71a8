package main

import (
	"time"

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
