package engine

import (
	"fmt"
	"math"
	"strconv"
)

// This file holds small helpers shared by the SVG charts of the report.
// Coordinates are formatted with a fixed number of decimals so the report
// is byte-for-byte reproducible and compact.

// svgNumber formats a coordinate or length with one decimal.
func svgNumber(x float64) string {
	return strconv.FormatFloat(x, 'f', 1, 64)
}

// svgTick is an axis label placed at (X, Y) in SVG user units.
type svgTick struct {
	X, Y  string
	Label string
	LineY string // y of the tick's grid line, where the chart draws one
}

// colorStop is one stop of a linear colour scale; Offset is in [0, 1].
type colorStop struct {
	Offset  float64
	R, G, B uint8
}

// divergingScale runs from red (bad) through near-white (zero) to blue
// (good): a colour-blind-safe diverging palette (ColorBrewer RdBu) whose
// neutral middle makes the sign of the Sharpe ratio obvious at a glance.
var divergingScale = [...]colorStop{
	{0.00, 0xb2, 0x18, 0x2b},
	{0.25, 0xef, 0x8a, 0x62},
	{0.50, 0xf7, 0xf7, 0xf7},
	{0.75, 0x67, 0xa9, 0xcf},
	{1.00, 0x21, 0x66, 0xac},
}

// scaleColor returns the "#rrggbb" colour at position t ∈ [0, 1] of the
// diverging scale, interpolating linearly between stops.
func scaleColor(t float64) string {
	if math.IsNaN(t) {
		t = 0.5
	}
	t = math.Max(0, math.Min(1, t))
	for i := 1; i < len(divergingScale); i++ {
		lo, hi := divergingScale[i-1], divergingScale[i]
		if t <= hi.Offset {
			f := (t - lo.Offset) / (hi.Offset - lo.Offset)
			return fmt.Sprintf("#%02x%02x%02x", lerpByte(lo.R, hi.R, f), lerpByte(lo.G, hi.G, f), lerpByte(lo.B, hi.B, f))
		}
	}
	last := divergingScale[len(divergingScale)-1]
	return fmt.Sprintf("#%02x%02x%02x", last.R, last.G, last.B)
}

// lerpByte interpolates between two colour channels, rounding to nearest.
func lerpByte(a, b uint8, f float64) uint8 {
	v := float64(a) + float64(f*(float64(b)-float64(a)))
	return uint8(math.Round(math.Max(0, math.Min(255, v))))
}

// tickStride returns the index step that shows at most maxTicks labels
// out of n values.
func tickStride(n, maxTicks int) int {
	if n <= maxTicks || maxTicks <= 0 {
		return 1
	}
	return (n + maxTicks - 1) / maxTicks
}
