package engine

import (
	"slices"
	"testing"
)

func TestSyntheticIsDeterministicPerSeed(t *testing.T) {
	a := Synthetic(2000, 11)
	b := Synthetic(2000, 11)
	if !slices.Equal(a, b) {
		t.Fatal("same seed produced different series")
	}
	c := Synthetic(2000, 12)
	if slices.Equal(a, c) {
		t.Fatal("different seeds produced the same series")
	}
	// A shorter series with the same seed is a prefix: bars depend only on
	// the seed and their position, which lets callers vary n freely.
	if !slices.Equal(Synthetic(500, 11), a[:500]) {
		t.Error("Synthetic(500, seed) is not a prefix of Synthetic(2000, seed)")
	}
}

func TestSyntheticProducesValidHourlyBars(t *testing.T) {
	bars := Synthetic(10_000, 5)
	if len(bars) != 10_000 {
		t.Fatalf("len = %d, want 10000", len(bars))
	}
	if err := ValidateBars(bars); err != nil {
		t.Fatalf("invalid synthetic bars: %v", err)
	}
	for i, b := range bars {
		if want := SyntheticStart + int64(i)*SyntheticInterval; b.Time != want {
			t.Fatalf("bar %d time = %d, want %d", i, b.Time, want)
		}
	}
}

func TestSyntheticHasTrendsToFind(t *testing.T) {
	// The series must contain real moves, otherwise the sweep is noise:
	// require at least a 20% swing between the highest and lowest close.
	bars := Synthetic(8760, 1)
	lo, hi := bars[0].Close, bars[0].Close
	for _, b := range bars {
		lo, hi = min(lo, b.Close), max(hi, b.Close)
	}
	if hi/lo < 1.2 {
		t.Errorf("closes range only from %v to %v", lo, hi)
	}
}

func TestSyntheticEmpty(t *testing.T) {
	for _, n := range []int{0, -5} {
		if got := Synthetic(n, 1); got == nil || len(got) != 0 {
			t.Errorf("Synthetic(%d) = %v, want an empty non-nil slice", n, got)
		}
	}
}
