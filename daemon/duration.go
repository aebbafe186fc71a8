package daemon

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// durationValue wraps a time.Duration flag so that a bad value says what a duration
// looks like: the flag package says only "parse error", and "-heartbeat 10" (no
// unit) is the usual mistake.
type durationValue struct{ flag.Value }

func (d durationValue) Set(s string) error {
	if err := d.Value.Set(s); err != nil {
		return durationError(s)
	}
	return nil
}

// Get keeps flag.Getter working for the wrapped value.
func (d durationValue) Get() any { return d.Value.(flag.Getter).Get() }

// durationError explains a value time.ParseDuration refused.
func durationError(s string) error {
	if _, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
		return fmt.Errorf("a duration needs a unit: %ss, %sms or %sm, say", s, s, s)
	}
	return fmt.Errorf("not a duration: want a number with a unit, such as 10s, 500ms, 2m or 1h30m")
}

// explainDurations makes every time.Duration flag of fs explain a bad value.
func explainDurations(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return
		}
		if _, ok := g.Get().(time.Duration); ok {
			if _, wrapped := f.Value.(durationValue); !wrapped {
				f.Value = durationValue{f.Value}
			}
		}
	})
}
