package dispatch

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// clientReconnect is a Client's default reconnect policy. banio's own grows to 10 s
// pauses (±50 %), which suits a fleet of workers spreading their reconnects over a
// master's restart; a Client is one caller that gains nothing by waiting that long: it
// would see a restarted master up to 15 s late, or not within its reconnect budget at
// all. This one starts at 50 ms and grows to 1 s (a tenth of the budget, if less), with
// ±50 % jitter, and never stops: the reconnect budget decides when calls give up. A
// banio.WithReconnectBackoff among the Client's banio options (WithBanIO) replaces it.
func clientReconnect(budget time.Duration) func() backoff.BackOff {
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
