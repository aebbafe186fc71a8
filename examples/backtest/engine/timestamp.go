package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Magnitudes that tell the units of an integer timestamp apart. Seconds of
// 10¹¹ would lie in the year 5138, while milliseconds reach it already in
// 1973, microseconds of 10¹⁴ in 1973 and nanoseconds of 10¹⁷ in 1973: real
// data of any of the four units is never ambiguous.
const (
	millisecondThreshold = 100_000_000_000
	microsecondThreshold = 100_000_000_000_000
	nanosecondThreshold  = 100_000_000_000_000_000
)

// timestampLayouts are the text forms ParseTimestamp accepts, tried in order.
// Layouts without a zone are read as UTC.
var timestampLayouts = [...]string{
	time.RFC3339Nano, // also parses RFC 3339 without fractions
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	time.DateOnly,
}

// ParseTimestamp returns the unix seconds of s, which is an integer count of
// unix seconds, milliseconds, microseconds or nanoseconds (told apart by
// magnitude: below 10¹¹ seconds, below 10¹⁴ milliseconds, below 10¹⁷
// microseconds, else nanoseconds; finer units are floored to the second), or
// text in RFC 3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05",
// "2006-01-02 15:04" (UTC) or "2006-01-02" (UTC midnight).
func ParseTimestamp(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		abs := n
		if abs < 0 {
			abs = -abs
		}
		if abs < 0 { // -2⁶³ has no positive counterpart: nanoseconds
			abs = nanosecondThreshold
		}
		switch {
		case abs < millisecondThreshold:
			return n, nil
		case abs < microsecondThreshold:
			return floorDiv(n, 1_000), nil
		case abs < nanosecondThreshold:
			return floorDiv(n, 1_000_000), nil
		default:
			return floorDiv(n, 1_000_000_000), nil
		}
	}
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, fmt.Errorf("%q is neither unix seconds/milliseconds/microseconds/nanoseconds, RFC 3339 (2006-01-02T15:04:05Z), "+
		"2006-01-02 15:04:05, nor a date 2006-01-02", s)
}

// floorDiv divides rounding towards negative infinity, so pre-1970
// millisecond timestamps map to the second they fall in.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
