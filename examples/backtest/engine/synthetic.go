package engine

import (
	"math"
	"math/rand/v2"
)

// SyntheticStart is the timestamp of the first synthetic bar
// (2020-01-01T00:00:00Z). A fixed start keeps [Synthetic] a pure function
// of its arguments.
const SyntheticStart int64 = 1577836800

// SyntheticInterval is the spacing of synthetic bars in seconds: hourly
// bars, so 8,760 bars are one year.
const SyntheticInterval int64 = 3600

// syntheticStream is the PCG stream selector. It is fixed so that the
// caller's seed alone decides the series.
const syntheticStream = 0x62616e666c656574 // "banfleet"

// marketRegime describes how the synthetic market behaves for a while.
// Alternating trends and ranges give a crossover strategy both something
// to find (trends) and something to lose on (whipsaws in ranges), so the
// parameter sweep produces an interesting Sharpe landscape.
type marketRegime struct {
	remaining  int     // bars left in this regime
	drift      float64 // expected return per bar
	volatility float64 // standard deviation of the return per bar
	reversion  float64 // pull towards anchor per bar (0 in trends)
	anchor     float64 // price the range mean-reverts to
}

// Synthetic returns n hourly OHLCV bars starting at [SyntheticStart]: a
// geometric random walk that switches between up-trends, down-trends and
// mean-reverting ranges with varying volatility. It is a pure function of
// (n, seed): it uses a PCG generator seeded from seed and only IEEE
// arithmetic that cannot be fused or vary by CPU, so every machine
// generates the same bits. It returns an empty slice when n ≤ 0.
func Synthetic(n int, seed int64) []Bar {
	if n <= 0 {
		return []Bar{}
	}
	rng := rand.New(rand.NewPCG(uint64(seed), syntheticStream))
	bars := make([]Bar, n)
	price := 100.0
	regime := marketRegime{}
	for i := range bars {
		if regime.remaining == 0 {
			regime = nextRegime(rng, price)
		}
		regime.remaining--
		bars[i] = syntheticBar(rng, &regime, price, SyntheticStart+int64(i)*SyntheticInterval)
		price = bars[i].Close
	}
	return bars
}

// nextRegime draws the next market regime, anchored at the current price.
func nextRegime(rng *rand.Rand, price float64) marketRegime {
	r := marketRegime{
		remaining:  150 + rng.IntN(650),
		volatility: 0.003 + float64(0.007*float64(rng.Float64())),
		anchor:     price,
	}
	trendStrength := 0.0002 + float64(0.0006*float64(rng.Float64()))
	switch rng.IntN(3) {
	case 0: // up-trend
		r.drift = trendStrength
	case 1: // down-trend
		r.drift = -trendStrength
	default: // mean-reverting range
		r.reversion = 0.01 + float64(0.04*float64(rng.Float64()))
	}
	return r
}

// syntheticBar draws one bar that opens near prevClose.
func syntheticBar(rng *rand.Rand, r *marketRegime, prevClose float64, t int64) Bar {
	vol := r.volatility
	deviation := (prevClose - r.anchor) / r.anchor
	ret := r.drift + float64(vol*approxNormal(rng)) - float64(r.reversion*deviation)
	ret = math.Max(-0.15, math.Min(0.15, ret))
	gap := float64(float64(0.1*vol) * approxNormal(rng))

	open := prevClose * (1 + gap)
	closePrice := open * (1 + ret)
	wickUp := float64(float64(0.5*vol) * math.Abs(approxNormal(rng)))
	wickDown := float64(float64(0.5*vol) * math.Abs(approxNormal(rng)))
	high := math.Max(open, closePrice) * (1 + wickUp)
	low := math.Min(open, closePrice) * (1 - wickDown)
	// Volume rises with the size of the move, as in real markets.
	volume := 1000 * (1 + float64(20*math.Abs(ret))) * (0.5 + float64(rng.Float64()))
	return Bar{Time: t, Open: open, High: high, Low: low, Close: closePrice, Volume: volume}
}

// approxNormal returns an approximately standard-normal value as a scaled
// Irwin–Hall sum of six uniforms. rand.NormFloat64 is avoided on purpose:
// its slow path calls math.Exp and math.Log, whose amd64 assembly picks an
// FMA code path depending on the CPU, which would break bit-for-bit
// reproducibility across machines. The sum is bounded (|z| ≤ 3·√2), which
// also keeps prices positive.
func approxNormal(rng *rand.Rand) float64 {
	sum := 0.0
	for range 6 {
		// rand.Float64 is a multiplication; keep it unfused as well.
		sum += float64(rng.Float64())
	}
	return (sum - 3) * math.Sqrt2
}
