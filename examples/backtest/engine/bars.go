package engine

import (
	"fmt"
	"math"
)

// Bar is one OHLCV candle. Time is the bar's opening time in unix seconds;
// seconds (rather than time.Time) keep the type comparable with ==, cheap to
// encode and free of time-zone state.
type Bar struct {
	Time   int64   `json:"time"`
	Open   float64 `json:"open"`
	High   float64 `json:"high"`
	Low    float64 `json:"low"`
	Close  float64 `json:"close"`
	Volume float64 `json:"volume"`
}

// Validate reports whether the bar is internally consistent: all values
// finite, prices strictly positive, volume non-negative and Low ≤ Open,
// Close ≤ High. A single bad tick would otherwise turn every metric of
// every parameter set into NaN, so bad data is rejected at the door.
func (b Bar) Validate() error {
	fields := [...]struct {
		name  string
		value float64
	}{{"open", b.Open}, {"high", b.High}, {"low", b.Low}, {"close", b.Close}, {"volume", b.Volume}}
	for _, f := range fields {
		if math.IsNaN(f.value) || math.IsInf(f.value, 0) {
			return fmt.Errorf("%s is not a finite number (%v)", f.name, f.value)
		}
	}
	for _, f := range fields[:4] {
		if f.value <= 0 {
			return fmt.Errorf("%s must be positive, got %v", f.name, f.value)
		}
	}
	if b.Volume < 0 {
		return fmt.Errorf("volume must not be negative, got %v", b.Volume)
	}
	if b.Low > b.High {
		return fmt.Errorf("low %v is above high %v", b.Low, b.High)
	}
	if b.Open < b.Low || b.Open > b.High {
		return fmt.Errorf("open %v is outside [low %v, high %v]", b.Open, b.Low, b.High)
	}
	if b.Close < b.Low || b.Close > b.High {
		return fmt.Errorf("close %v is outside [low %v, high %v]", b.Close, b.Low, b.High)
	}
	return nil
}

// ValidateBars checks every bar with [Bar.Validate] and that timestamps
// strictly increase, which the strategy relies on for "next bar" semantics
// and the metrics rely on to infer the bar interval. Errors name the
// zero-based index of the offending bar.
func ValidateBars(bars []Bar) error {
	for i, b := range bars {
		if err := b.Validate(); err != nil {
			return fmt.Errorf("bar %d: %w", i, err)
		}
		if i > 0 && b.Time <= bars[i-1].Time {
			return fmt.Errorf("bar %d: timestamp %d does not increase (previous %d)", i, b.Time, bars[i-1].Time)
		}
	}
	return nil
}
