package engine

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// axisLabels is the labels of a's ticks.
func axisLabels(a axis) []string {
	var out []string
	for _, t := range a.ticks {
		out = append(out, t.label)
	}
	return out
}

// checkAxis asserts what every axis must hold for data in [lo, hi]: it covers
// the data, its ticks increase, lie on the axis and are at most target+1, and
// every label is short and distinct.
func checkAxis(t *testing.T, name string, a axis, lo, hi float64, target int) {
	t.Helper()
	if !(a.lo <= lo && hi <= a.hi && a.lo < a.hi) {
		t.Errorf("%s: axis [%g, %g] does not cover the data [%g, %g]", name, a.lo, a.hi, lo, hi)
	}
	if len(a.ticks) < 2 || len(a.ticks) > target+1 {
		t.Errorf("%s: %d ticks %q, want 2..%d", name, len(a.ticks), axisLabels(a), target+1)
	}
	seen := map[string]bool{}
	for i, tick := range a.ticks {
		if utf8.RuneCountInString(tick.label) > maxTickLabel {
			t.Errorf("%s: label %q is longer than %d characters", name, tick.label, maxTickLabel)
		}
		if seen[tick.label] {
			t.Errorf("%s: label %q repeats: %q", name, tick.label, axisLabels(a))
		}
		seen[tick.label] = true
		if f := a.fraction(tick.value); f < -1e-9 || f > 1+1e-9 {
			t.Errorf("%s: tick %q lies off the axis (%g)", name, tick.label, f)
		}
		if i > 0 && tick.value <= a.ticks[i-1].value {
			t.Errorf("%s: ticks do not increase: %q", name, axisLabels(a))
		}
	}
	if lo >= 0 && a.lo < 0 {
		t.Errorf("%s: data never below 0, axis starts at %g", name, a.lo)
	}
}

func TestLinearAxis(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lo, hi float64
		want   string // labels joined by spaces; "" to check only the invariants
	}{
		{"unit range", 0.71, 1.93, "0.5 1.0 1.5 2.0"},
		{"equity around one", 0.95, 1.32, "0.9 1.0 1.1 1.2 1.3 1.4"},
		{"the 300,000-bar run", 0.7086, 17668719.4957, "0 5M 10M 15M 20M"},
		{"huge", 3e14, 9.9e17, "0 200P 400P 600P 800P 1000P"},
		{"beyond units", -1e300, 1e300, ""},
		{"largest floats", -math.MaxFloat64, math.MaxFloat64, ""},
		{"negative", -0.42, -0.05, "-0.5 -0.4 -0.3 -0.2 -0.1 0"},
		{"across zero", -250, 1250, "-500 0 500 1000 1500"},
		{"tiny range", 1.0000001, 1.0000002, "0.9995 1.0000 1.0005 1.0010"},
		{"tiny values", 2e-9, 7e-9, "2n 3n 4n 5n 6n 7n"},
		{"tiny span of tiny values", 2.0001e-9, 2.0002e-9, ""},
		{"tiny span of large values", 17650001, 17650002, ""},
		{"constant", 1, 1, "0.90 0.95 1.00 1.05 1.10"},
		{"constant negative", -3, -3, "-3.4 -3.2 -3.0 -2.8 -2.6"},
		{"constant zero", 0, 0, "0 0.2 0.4 0.6 0.8 1.0"},
		{"thousands", 12345, 12999, "12200 12400 12600 12800 13000"},
		{"millions, fine steps", 4_100_000, 4_900_000, "4000k 4200k 4400k 4600k 4800k 5000k"},
	} {
		a := linearAxis(tc.lo, tc.hi, 5)
		checkAxis(t, tc.name, a, math.Max(tc.lo, -1e300), math.Min(tc.hi, 1e300), 5)
		if got := strings.Join(axisLabels(a), " "); tc.want != "" && got != tc.want {
			t.Errorf("%s: labels %q, want %q", tc.name, got, tc.want)
		}
	}
	a := linearAxis(math.NaN(), math.Inf(1), 5)
	if a.lo != 0 || a.hi != 1 {
		t.Errorf("non-finite data: axis [%g, %g], want [0, 1]", a.lo, a.hi)
	}
}

func TestLogAxis(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lo, hi float64
		want   string
	}{
		{"the 300,000-bar run", 0.7086, 17668719.4957, "1 100 10k 1M"},
		{"one decade", 0.8, 9.5, "1 2 5 10"},
		{"two decades", 0.5, 40, "0.5 1 2 5 10 20"},
		{"tiny", 1e-8, 1e-6, "10n 100n 1µ"},
		{"enormous", 1, 1e200, "1 1e+50 1e+100 1e+150 1e+200"},
	} {
		a := valueAxis(tc.lo, tc.hi, 5)
		if !a.log {
			t.Errorf("%s: want a log axis", tc.name)
		}
		checkAxis(t, tc.name, a, tc.lo, tc.hi, 5)
		if got := strings.Join(axisLabels(a), " "); got != tc.want {
			t.Errorf("%s: labels %q, want %q", tc.name, got, tc.want)
		}
	}
	if valueAxis(0.5, 4.9, 5).log || valueAxis(0, 100, 5).log || valueAxis(-1, 100, 5).log {
		t.Error("under a decade, or data at or below zero, must be linear")
	}
}

func TestFormatTick(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		exp  int
		unit tickUnit
		want string
	}{
		{0, -3, tickUnit{}, "0"},
		{math.Copysign(0, -1), 0, tickUnit{}, "0"},
		{0.30000000000000004, -1, tickUnit{}, "0.3"},
		{1.25, -2, tickUnit{}, "1.25"},
		{17_500_000, 5, unitFor(5), "17500k"},
		{17_000_000, 6, unitFor(6), "17M"},
		{250_000, 4, unitFor(4), "250k"},
		{0.00025, -5, unitFor(-5), "0.00025"},
		{1500, 2, unitFor(2), "1500"},
		{4e-8, -8, unitFor(-8), "40n"},
		{-3e24, 24, unitFor(24), "-3e+24"},
		{1.25e300, 298, unitFor(298), "1.25e+300"},
	} {
		if got := formatTick(tc.v, tc.exp, tc.unit); got != tc.want {
			t.Errorf("formatTick(%v, %d, %v) = %q, want %q", tc.v, tc.exp, tc.unit, got, tc.want)
		}
	}
}
