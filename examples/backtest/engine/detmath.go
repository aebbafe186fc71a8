package engine

import "math"

// This file holds pure-Go ports of the FreeBSD-derived exp and log that
// the Go standard library uses on platforms without assembly. They exist
// because math.Exp and math.Log run CPU-dependent assembly on amd64 (with
// and without FMA) and may therefore differ in the last bit between two
// workers. Every product that feeds an addition is wrapped in float64(...)
// so no compiler may fuse it into an FMA. Results match math.Exp/math.Log
// to within an ulp or two; what matters here is that they are identical
// everywhere.

// deterministicPow returns base**exponent for a finite base > 0, computed
// as exp(exponent·log(base)). It returns NaN for other bases; callers
// handle those cases before calling.
func deterministicPow(base, exponent float64) float64 {
	if !(base > 0) || math.IsInf(base, 0) {
		return math.NaN()
	}
	return deterministicExp(float64(exponent * deterministicLog(base)))
}

// deterministicExp returns e**x (port of the pure-Go math.exp).
func deterministicExp(x float64) float64 {
	const (
		ln2Hi     = 6.93147180369123816490e-01
		ln2Lo     = 1.90821492927058770002e-10
		log2e     = 1.44269504088896338700e+00
		overflow  = 7.09782712893383973096e+02
		underflow = -7.45133219101941108420e+02
		nearZero  = 1.0 / (1 << 28)
	)
	switch {
	case math.IsNaN(x):
		return x
	case x > overflow:
		return math.Inf(1)
	case x < underflow:
		return 0
	case -nearZero < x && x < nearZero:
		return 1 + x
	}
	var k int
	switch {
	case x < 0:
		k = int(float64(log2e*x) - 0.5)
	case x > 0:
		k = int(float64(log2e*x) + 0.5)
	}
	hi := x - float64(float64(k)*ln2Hi)
	lo := float64(float64(k) * ln2Lo)
	return expMulti(hi, lo, k)
}

// expMulti returns e**r × 2**k where r = hi - lo and |r| ≤ ln(2)/2.
func expMulti(hi, lo float64, k int) float64 {
	const (
		p1 = 1.66666666666666657415e-01
		p2 = -2.77777777770155933842e-03
		p3 = 6.61375632143793436117e-05
		p4 = -1.65339022054652515390e-06
		p5 = 4.13813679705723846039e-08
	)
	r := hi - lo
	t := float64(r * r)
	poly := p4 + float64(t*p5)
	poly = p3 + float64(t*poly)
	poly = p2 + float64(t*poly)
	poly = p1 + float64(t*poly)
	c := r - float64(t*poly)
	y := 1 - ((lo - float64(r*c)/(2-c)) - hi)
	return math.Ldexp(y, k)
}

// deterministicLog returns the natural logarithm of x (port of the
// pure-Go math.log).
func deterministicLog(x float64) float64 {
	const (
		ln2Hi = 6.93147180369123816490e-01
		ln2Lo = 1.90821492927058770002e-10
		l1    = 6.666666666666735130e-01
		l2    = 3.999999999940941908e-01
		l3    = 2.857142874366239149e-01
		l4    = 2.222219843214978396e-01
		l5    = 1.818357216161805012e-01
		l6    = 1.531383769920937332e-01
		l7    = 1.479819860511658591e-01
	)
	switch {
	case math.IsNaN(x) || math.IsInf(x, 1):
		return x
	case x < 0:
		return math.NaN()
	case x == 0:
		return math.Inf(-1)
	}
	f1, ki := math.Frexp(x)
	if f1 < math.Sqrt2/2 {
		f1 *= 2
		ki--
	}
	f := f1 - 1
	k := float64(ki)

	s := f / (2 + f)
	s2 := float64(s * s)
	s4 := float64(s2 * s2)
	odd := l5 + float64(s4*l7)
	odd = l3 + float64(s4*odd)
	odd = l1 + float64(s4*odd)
	t1 := float64(s2 * odd)
	even := l4 + float64(s4*l6)
	even = l2 + float64(s4*even)
	t2 := float64(s4 * even)
	sum := t1 + t2
	hfsq := float64(float64(0.5*f) * f)
	return float64(k*ln2Hi) - ((hfsq - (float64(s*(hfsq+sum)) + float64(k*ln2Lo))) - f)
}
