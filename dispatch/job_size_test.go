package dispatch

import (
	"testing"
	"time"
	"unsafe"
)

// maxJobSize is the budget of the master's record of one job: the 352-byte size class.
// Every remote job allocates one, so each size class above it costs every job 32 bytes
// more (the job was 416 bytes, with four time.Time fields, until they became instants).
const maxJobSize = 352

func TestJobFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(job{}); n > maxJobSize {
		t.Errorf("a job is %d bytes, its budget is %d: keep new fields off the job, or make room", n, maxJobSize)
	}
}

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
