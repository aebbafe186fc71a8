package dispatch

import (
	"testing"
	"time"
)

// TestInstantRoundTrip: none and the zero time are each other, a wall time and a time of
// this process come back as themselves, and instants keep their order and distances.
func TestInstantRoundTrip(t *testing.T) {
	if instantOf(time.Time{}) != 0 || !instant(0).time().IsZero() {
		t.Fatal("the zero time and no instant are not each other")
	}
	wall := time.Date(2026, 11, 30, 8, 0, 0, 123, time.UTC) // a time from elsewhere: no monotonic reading
	// Each conversion reads the clock: they agree to within the clocks' drift between
	// the two readings.
	if got := instantOf(wall).time(); got.Sub(wall).Abs() > time.Millisecond {
		t.Errorf("a wall time came back as %v, want %v", got, wall)
	}
	soon := time.Now().Add(time.Minute)
	if got := instantOf(soon).time(); got.Sub(soon).Abs() > time.Millisecond {
		t.Errorf("a time of this process came back as %v, want %v", got, soon)
	}
	a := instantNow()
	b := instantOf(time.Now())
	if a.isZero() || b < a {
		t.Errorf("instants out of order: %d then %d", a, b)
	}
	if d := a.add(time.Second).sub(a); d != time.Second {
		t.Errorf("a second after an instant is %v after it", d)
	}
}
