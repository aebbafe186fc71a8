package engine

import (
	"math"
	"testing"
)

// assertFloats fails unless got and want have the same length and every
// element agrees within tolerance.
func assertFloats(t *testing.T, name string, got, want []float64, tolerance float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values %v, want %d values %v", name, len(got), got, len(want), want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > tolerance {
			t.Errorf("%s[%d] = %.15g, want %.15g", name, i, got[i], want[i])
		}
	}
}

func TestSMAHandComputed(t *testing.T) {
	values := []float64{1, 2, 3, 4, 5, 6}
	assertFloats(t, "SMA(3)", SMA(values, 3), []float64{2, 3, 4, 5}, 0)
	assertFloats(t, "SMA(1)", SMA(values, 1), values, 0)
	assertFloats(t, "SMA(6)", SMA(values, 6), []float64{3.5}, 0)
	// A window that slides over a spike: (10+0+0)/3, (0+0+4)/3 ...
	assertFloats(t, "SMA spike", SMA([]float64{10, 0, 0, 4, 4}, 3), []float64{10.0 / 3, 4.0 / 3, 8.0 / 3}, 1e-15)
}

func TestEMAHandComputed(t *testing.T) {
	// period 3 → alpha = 0.5, seeded with SMA(1,2,3) = 2.
	// Then 0.5·4 + 0.5·2 = 3, 0.5·10 + 0.5·3 = 6.5, 0.5·0 + 0.5·6.5 = 3.25.
	assertFloats(t, "EMA(3)", EMA([]float64{1, 2, 3, 4, 10, 0}, 3), []float64{2, 3, 6.5, 3.25}, 0)
	// period 4 → alpha = 0.4, seed (2+4+6+8)/4 = 5, next 0.4·10 + 0.6·5 = 7.
	assertFloats(t, "EMA(4)", EMA([]float64{2, 4, 6, 8, 10}, 4), []float64{5, 7}, 1e-15)
	// period 1 → alpha = 1: the EMA is the series itself.
	assertFloats(t, "EMA(1)", EMA([]float64{3, 1, 4}, 1), []float64{3, 1, 4}, 0)
}

func TestMovingAveragesRejectImpossibleInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []float64
		period int
	}{
		{"zero period", []float64{1, 2}, 0},
		{"negative period", []float64{1, 2}, -3},
		{"too few values", []float64{1, 2}, 3},
		{"no values", nil, 1},
	} {
		if got := SMA(tc.values, tc.period); got != nil {
			t.Errorf("SMA %s = %v, want nil", tc.name, got)
		}
		if got := EMA(tc.values, tc.period); got != nil {
			t.Errorf("EMA %s = %v, want nil", tc.name, got)
		}
	}
}
