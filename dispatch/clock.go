package dispatch

import "time"

// instant is a moment on the master's clock: nanoseconds since clockStart, read from
// the monotonic clock, with 0 meaning "none". A job records four moments (submitted,
// deadline, ready, started); as time.Time values they took 96 of its 416 bytes, and
// reading the wall clock for them cost twice what reading the monotonic one does.
// A wall time from outside the process (a restored job's submission, a decoded
// deadline) becomes an instant by its distance from clockStart's wall reading, and
// back again exactly.
type instant int64

// clockStart is the origin of instants.
var clockStart = time.Now()

// instantNow is the current instant.
func instantNow() instant { return instant(max(time.Since(clockStart), 1)) }

// instantOf is t as an instant; the zero time is none. A time read from this
// process's clock is compared by its monotonic reading, any other by its wall time.
func instantOf(t time.Time) instant {
	if t.IsZero() {
		return 0
	}
	d := t.Sub(clockStart)
	if d == 0 {
		d = 1 // clockStart itself, one nanosecond off, rather than none
	}
	return instant(d)
}

// isZero reports whether i is none.
func (i instant) isZero() bool { return i == 0 }

// time is i as a time.Time (the zero time for none).
func (i instant) time() time.Time {
	if i == 0 {
		return time.Time{}
	}
	return clockStart.Add(time.Duration(i))
}

// add is the instant d after i.
func (i instant) add(d time.Duration) instant { return i + instant(d) }

// sub is the duration from o to i.
func (i instant) sub(o instant) time.Duration { return time.Duration(i - o) }
