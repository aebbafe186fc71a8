package engine

// Moving-average kinds accepted in [Params.Kind].
const (
	// KindSMA is the simple moving average: the mean of the last N closes.
	KindSMA = "sma"
	// KindEMA is the exponential moving average with smoothing 2/(N+1),
	// seeded with the SMA of the first N closes.
	KindEMA = "ema"
)

// movingAverage computes an SMA or EMA one value at a time. Streaming
// lets [Run] evaluate both averages inside its single pass over the bars
// without allocating per-call indicator slices, and the exported [SMA] and
// [EMA] use the very same code, so testing them tests the backtest.
type movingAverage struct {
	exponential bool
	period      int
	alpha       float64 // EMA smoothing factor 2/(period+1)
	sum         float64 // running sum of the window (SMA) or seed (EMA)
	value       float64
	seen        int
}

// newMovingAverage returns a streaming average; period must be ≥ 1 and
// kind one of KindSMA or KindEMA (callers validate first).
func newMovingAverage(kind string, period int) movingAverage {
	return movingAverage{
		exponential: kind == KindEMA,
		period:      period,
		alpha:       2 / float64(period+1),
	}
}

// push adds the next value x. leaving must be the value that drops out of
// an SMA window, i.e. the value pushed period steps earlier; it is ignored
// until period values have been seen and always ignored for EMAs. It
// returns the current average and whether it is defined yet.
func (m *movingAverage) push(x, leaving float64) (float64, bool) {
	m.seen++
	switch {
	case m.seen < m.period:
		m.sum += x
		return 0, false
	case m.seen == m.period:
		m.sum += x
		m.value = m.sum / float64(m.period)
	case m.exponential:
		m.value = float64(m.alpha*x) + float64((1-m.alpha)*m.value)
	default:
		m.sum += x - leaving
		m.value = m.sum / float64(m.period)
	}
	return m.value, true
}

// SMA returns the simple moving average of values over period. Element k
// of the result is the average ending at values[k+period-1], so the result
// has len(values)-period+1 elements (undefined leading values are omitted
// rather than filled with NaN). It returns nil when period < 1 or there
// are fewer than period values.
func SMA(values []float64, period int) []float64 {
	return movingAverageSeries(KindSMA, values, period)
}

// EMA returns the exponential moving average of values with smoothing
// 2/(period+1), seeded with the SMA of the first period values. Alignment
// and nil cases are as for [SMA].
func EMA(values []float64, period int) []float64 {
	return movingAverageSeries(KindEMA, values, period)
}

// movingAverageSeries runs a streaming average over values.
func movingAverageSeries(kind string, values []float64, period int) []float64 {
	if period < 1 || len(values) < period {
		return nil
	}
	ma := newMovingAverage(kind, period)
	out := make([]float64, 0, len(values)-period+1)
	for i, x := range values {
		leaving := 0.0
		if i >= period {
			leaving = values[i-period]
		}
		if v, ok := ma.push(x, leaving); ok {
			out = append(out, v)
		}
	}
	return out
}
