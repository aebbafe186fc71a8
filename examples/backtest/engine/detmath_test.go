package engine

import (
	"math"
	"testing"
)

// The deterministic ports must agree with the standard library to within
// a couple of ulps; exact agreement is not expected, since the point is to
// avoid the CPU-dependent assembly behind math.Exp and math.Log.
func TestDeterministicExpLogMatchStandardLibrary(t *testing.T) {
	for _, x := range []float64{-700, -20, -1, -0.5, -1e-9, 1e-10, 0.3, 1, 2.5, 10, 100, 700} {
		if got, want := deterministicExp(x), math.Exp(x); math.Abs(got-want) > 4e-16*want {
			t.Errorf("exp(%v) = %.17g, math.Exp = %.17g", x, got, want)
		}
	}
	for _, x := range []float64{1e-300, 1e-5, 0.5, 0.999, 1, 1.001, 2, math.E, 1e5, 1e300} {
		if got, want := deterministicLog(x), math.Log(x); math.Abs(got-want) > 4e-16*math.Max(math.Abs(want), 1) {
			t.Errorf("log(%v) = %.17g, math.Log = %.17g", x, got, want)
		}
	}
}

func TestDeterministicSpecialCases(t *testing.T) {
	if got := deterministicExp(0); got != 1 {
		t.Errorf("exp(0) = %v", got)
	}
	if got := deterministicExp(1000); !math.IsInf(got, 1) {
		t.Errorf("exp(1000) = %v, want +Inf", got)
	}
	if got := deterministicExp(-1000); got != 0 {
		t.Errorf("exp(-1000) = %v, want 0", got)
	}
	if got := deterministicLog(1); got != 0 {
		t.Errorf("log(1) = %v", got)
	}
	if got := deterministicLog(0); !math.IsInf(got, -1) {
		t.Errorf("log(0) = %v, want -Inf", got)
	}
	for _, bad := range []float64{-1, 0, math.NaN(), math.Inf(1)} {
		if got := deterministicPow(bad, 2); !math.IsNaN(got) {
			t.Errorf("pow(%v, 2) = %v, want NaN", bad, got)
		}
	}
	if got := deterministicPow(1.21, 0.5); math.Abs(got-1.1) > 1e-15 {
		t.Errorf("pow(1.21, 0.5) = %.17g, want 1.1", got)
	}
}
