package main

import (
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/cenkalti/backoff/v4"
)

func TestReconnectBackoff(t *testing.T) {
	for _, c := range []struct {
		budget, most time.Duration
	}{
		{dispatch.DefaultReconnectBudget, 1500 * time.Millisecond}, // 1 s ± 50 %
		{time.Second, 150 * time.Millisecond},                      // a tenth of the budget
		{time.Millisecond, 15 * time.Millisecond},
	} {
		b := reconnectBackoff(c.budget)()
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
