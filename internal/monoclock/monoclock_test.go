package monoclock

import (
	"testing"
	"time"
)

// TestNowIsSinceStart: Now moves on with time and agrees with a wall-clock reading of
// the time since Start (within the gap between the two readings).
func TestNowIsSinceStart(t *testing.T) {
	a := Now()
	before := time.Now()
	b := Now()
	since := before.Sub(Start)
	if b < a || since < a || b < since {
		t.Fatalf("readings out of order: Now %v, then time.Since(Start) %v, then Now %v", a, since, b)
	}
}
