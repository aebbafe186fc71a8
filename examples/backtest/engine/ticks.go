package engine

import (
	"math"
	"strconv"
)

// This file lays out the report's value axes: rounded ticks (1, 2 or 5 times
// a power of ten) with labels short enough for the chart's margin, on a linear
// or a logarithmic scale.
//
// The first version padded the data range by 5% on each side and labelled five
// evenly spaced fractions of it with %.3f. For a curve from 0.71 to 17.7
// million that put the bottom tick at −883,435 (the padding of a huge range
// pushed a positive series below zero) and printed labels such as
// "18552155.435", wider than the margin, so the chart showed "52155.435".

// Axis bounds and label width.
const (
	// maxTickLabel is the longest tick label in characters (a sign, seven
	// digits and a unit, see unitFor); the equity chart's left margin fits it
	// at the report's font size.
	maxTickLabel = 9
	// logScaleRatio is the high/low ratio from which the equity chart switches
	// to a logarithmic scale: compounding over a decade or more reads better
	// there (a linear chart of 0.7 to 17 million is a flat line and a spike).
	logScaleRatio = 10
	// minRelativeSpan is the smallest span of a linear axis relative to its
	// largest magnitude, so a nearly flat series gets a few digits of ticks
	// rather than labels that differ in the eighth decimal.
	minRelativeSpan = 1e-3
)

// axis maps values to [0, 1] along a chart axis and carries its ticks.
type axis struct {
	lo, hi float64 // the values at the ends (for a log axis, both > 0)
	log    bool
	ticks  []axisTick
}

// axisTick is one labelled tick.
type axisTick struct {
	value float64
	label string
}

// fraction is where v lies along the axis: 0 at lo, 1 at hi.
func (a axis) fraction(v float64) float64 {
	if a.log {
		v = math.Max(v, a.lo) // a log axis has no place for 0 (callers avoid it)
		return (deterministicLog(v) - deterministicLog(a.lo)) / (deterministicLog(a.hi) - deterministicLog(a.lo))
	}
	return (v - a.lo) / (a.hi - a.lo)
}

// valueAxis chooses the scale for data in [lo, hi]: logarithmic when the data
// is positive and spans at least logScaleRatio, else linear.
func valueAxis(lo, hi float64, target int) axis {
	if lo > 0 && hi/lo >= logScaleRatio {
		return logAxis(lo, hi, target)
	}
	return linearAxis(lo, hi, target)
}

// linearAxis covers [lo, hi] with about target rounded ticks (never more than
// target+1); the ends are the ticks just outside the data, so data that never
// goes below zero gets no negative tick (the padding that put one there is gone). A constant series is shown ±10% around its
// value (0 to 1 for zero); non-finite input yields the axis 0 to 1.
func linearAxis(lo, hi float64, target int) axis {
	if !isFinite(lo) || !isFinite(hi) {
		lo, hi = 0, 1
	}
	if hi < lo {
		lo, hi = hi, lo
	}
	// Keep hi-lo and the ticks finite: ±10³⁰⁰ is beyond any chart anyway.
	lo, hi = clamp(lo, -1e300, 1e300), clamp(hi, -1e300, 1e300)
	target = max(target, 2)
	magnitude := math.Max(math.Abs(lo), math.Abs(hi))
	switch span := hi - lo; {
	case magnitude == 0:
		lo, hi = 0, 1
	case span == 0:
		lo, hi = lo-float64(0.1*magnitude), hi+float64(0.1*magnitude)
	case span < float64(minRelativeSpan*magnitude):
		mid, half := lo+float64(span/2), float64(minRelativeSpan*magnitude/2)
		lo, hi = mid-half, mid+half
	}
	step, exp := niceStep((hi - lo) / float64(target-1))
	first, last := tickRange(lo, hi, step)
	for last-first > float64(target) { // rounding made one step too many
		step, exp = niceStep(float64(step * 1.6)) // the next of 1, 2, 5, 10
		first, last = tickRange(lo, hi, step)
	}
	// The ends are the outer ticks, or the data where a tick fell within a
	// rounding error inside it.
	a := axis{lo: math.Min(float64(first*step), lo), hi: math.Max(float64(last*step), hi)}
	unit := unitFor(exp)
	for i := first; i <= last; i++ {
		v := float64(i * step)
		a.ticks = append(a.ticks, axisTick{value: v, label: formatTick(v, exp, unit)})
	}
	return a
}

// tickRange is the first and last multiple of step that cover [lo, hi],
// forgiving a rounding error of a millionth of a step (0.9/0.05 is
// 17.999999999999996, which must not add a tick at 0.85).
func tickRange(lo, hi, step float64) (first, last float64) {
	return math.Floor(lo/step + 1e-6), math.Ceil(hi/step - 1e-6)
}

// logAxis covers [lo, hi] (lo > 0, hi ≥ 10·lo) with ticks at powers of ten,
// every k-th decade when there are more than target, and at 2 and 5 times them
// when there are fewer than three. The ends are the data's, widened by 3% of
// the range on each side (in log terms).
func logAxis(lo, hi float64, target int) axis {
	target = max(target, 2)
	pad := deterministicPow(hi/lo, 0.03)
	a := axis{lo: lo / pad, hi: float64(hi * pad), log: true}
	firstDecade, lastDecade := decadeAtOrAbove(a.lo), decadeAtOrBelow(a.hi)
	decades := lastDecade - firstDecade + 1
	// Every stride-th decade, stride 1, 2 or 5 times a power of ten, counted
	// from 10⁰ so that equity 1 (the start) is labelled when it is in range.
	strideStep, _ := niceStep(float64(decades) / float64(target))
	stride := max(1, int(strideStep))
	multiples := []float64{1}
	if decades < 3 {
		multiples = []float64{1, 2, 5}
	}
	for d := firstDecade - 1; d <= lastDecade; d++ {
		if d >= firstDecade && ((d%stride)+stride)%stride != 0 {
			continue
		}
		for _, m := range multiples {
			v := float64(m * math.Pow10(d))
			if v < a.lo || v > a.hi || (d < firstDecade && m == 1) {
				continue
			}
			a.ticks = append(a.ticks, axisTick{value: v, label: formatTick(v, d, unitFor(d))})
		}
	}
	return a
}

// decadeAtOrAbove is the smallest d with 10^d ≥ x (x > 0).
func decadeAtOrAbove(x float64) int {
	d := decadeAtOrBelow(x)
	if math.Pow10(d) < x {
		d++
	}
	return d
}

// decadeAtOrBelow is the largest d with 10^d ≤ x (x > 0).
func decadeAtOrBelow(x float64) int {
	d := 0
	for math.Pow10(d) > x && d > -330 {
		d--
	}
	for math.Pow10(d+1) <= x && d < 310 {
		d++
	}
	return d
}

// niceStep is the step of 1, 2 or 5 times a power of ten nearest raw (on a
// log scale: 1 up to 1.5, 2 up to 3, 5 up to 7), and that power's exponent
// (which sets the labels' decimals).
func niceStep(raw float64) (float64, int) {
	if !(raw > 0) || math.IsInf(raw, 1) {
		return 1, 0
	}
	exp := decadeAtOrBelow(raw)
	switch f := raw / math.Pow10(exp); {
	case f < 1.5:
		return math.Pow10(exp), exp
	case f < 3:
		return float64(2 * math.Pow10(exp)), exp
	case f < 7:
		return float64(5 * math.Pow10(exp)), exp
	default:
		return math.Pow10(exp + 1), exp + 1
	}
}

// tickUnit is a label's scale: values are divided by 10^exp and written
// with suffix (k for thousands, M for millions, µ for millionths, …).
type tickUnit struct {
	exp    int
	suffix string
}

// siSuffixes maps the exponents that have an SI prefix to it.
var siSuffixes = map[int]string{
	-18: "a", -15: "f", -12: "p", -9: "n", -6: "µ",
	3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E",
}

// unitFor picks the unit of labels whose precision is 10^exp: none for
// precisions from 10⁻⁵ to 10², so "0.00025" and "1500" read plainly, else the
// SI prefix at or below the precision, so that labels have no decimals:
// "250k", "17M", "40n". With at most about four thousand steps between zero
// and an axis end (minRelativeSpan), that bounds labels to maxTickLabel.
func unitFor(exp int) tickUnit {
	if exp >= -5 && exp < 3 {
		return tickUnit{}
	}
	u := 3 * int(floorDiv(int64(exp), 3))
	if suffix, ok := siSuffixes[u]; ok {
		return tickUnit{exp: u, suffix: suffix}
	}
	return tickUnit{exp: u} // beyond the prefixes: formatTick falls back to exponents
}

// formatTick writes v to the precision 10^exp in unit: as many decimals as the
// precision needs and no more, so "0.5", "1.25", "250k", "17M". Beyond the SI
// prefixes (10²¹ and up, 10⁻¹⁸ and below) it uses exponent notation, "1e+300",
// which can exceed maxTickLabel when such an axis is also narrow: no equity
// curve gets there.
func formatTick(v float64, exp int, unit tickUnit) string {
	if v == 0 {
		return "0" // also for -0
	}
	if unit.exp != 0 && unit.suffix == "" {
		digits := 1
		for scaled := math.Abs(math.Round(v / math.Pow10(exp))); scaled >= 10 && digits < 17; scaled /= 10 {
			digits++
		}
		return strconv.FormatFloat(v, 'g', digits, 64)
	}
	decimals := max(0, unit.exp-exp)
	return strconv.FormatFloat(v/math.Pow10(unit.exp), 'f', decimals, 64) + unit.suffix
}

// isFinite reports whether x is neither NaN nor infinite.
func isFinite(x float64) bool {
	return !math.IsNaN(x) && !math.IsInf(x, 0)
}

// clamp limits x to [lo, hi].
func clamp(x, lo, hi float64) float64 {
	return math.Max(lo, math.Min(hi, x))
}
