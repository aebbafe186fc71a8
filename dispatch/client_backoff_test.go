package dispatch

import (
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// A Client redials within a tenth of its budget, at most a second (±50 %), and never
// stops on its own.
func TestClientReconnectPolicy(t *testing.T) {
	for _, c := range []struct {
		budget, most time.Duration
	}{
		{DefaultReconnectBudget, 1500 * time.Millisecond},
		{time.Second, 150 * time.Millisecond},
		{time.Millisecond, 15 * time.Millisecond},
	} {
		b := clientReconnect(c.budget)()
		var elapsed time.Duration
		for range 1000 {
			d := b.NextBackOff()
			if d == backoff.Stop || d > c.most {
				t.Fatalf("budget %v: retry in %v after %v, want at most %v and never stop", c.budget, d, elapsed, c.most)
			}
			elapsed += d
		}
	}
}
