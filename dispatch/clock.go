package dispatch

import (
	"time"

	"github.com/banfleet/banfleet/internal/monoclock"
)

// instant is a moment on the master's clock: nanoseconds since clockStart, read from
// the monotonic clock (monoclock), with 0 meaning "none". A job records four moments (submitted,
// deadline, ready, started); as time.Time values they took 96 of its 416 bytes, and
// reading the wall clock for them cost twice what reading the monotonic one does.
//
// An instant becomes a wall time (time) and a wall time an instant (instantOf) by its
// distance from now, on the wall clock of now: a deadline sent to a worker, or a
// submission time stored, is what it would have been as a time.Time taken at the
// conversion, even after the wall clock was stepped since the process started.
type instant int64

// clockStart is the origin of instants.
var clockStart = monoclock.Start

// instantNow is the current instant.
func instantNow() instant { return instant(max(monoclock.Now(), 1)) }

// instantOf is t as an instant; the zero time is none. A time read from this process's
// clock is placed by its monotonic reading, any other (decoded, restored) by its wall
// time against the wall clock now.
func instantOf(t time.Time) instant {
	if t.IsZero() {
		return 0
	}
	now := time.Now()
	i := instant(now.Sub(clockStart)) + instant(t.Sub(now))
	if i == 0 {
		i = 1 // clockStart itself, one nanosecond off, rather than none
	}
	return i
}

// isZero reports whether i is none.
func (i instant) isZero() bool { return i == 0 }

// time is i as a time.Time (the zero time for none), placed against the clock now.
func (i instant) time() time.Time {
	if i == 0 {
		return time.Time{}
	}
	now := time.Now()
	return now.Add(time.Duration(i) - now.Sub(clockStart))
}

// add is the instant d after i.
func (i instant) add(d time.Duration) instant { return i + instant(d) }

// sub is the duration from o to i.
func (i instant) sub(o instant) time.Duration { return time.Duration(i - o) }
