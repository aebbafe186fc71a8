package engine

import "math"

// secondsPerYear is the length of an average Julian year, used to turn the
// data's time span into years for CAGR and annualisation.
const secondsPerYear = 365.25 * 24 * 60 * 60

// Result holds the metrics of one backtest. Every float is finite (0
// stands in for undefined values such as the Sharpe ratio of a flat
// equity curve), so results always marshal to JSON, and JSON round trips
// preserve them bit for bit.
type Result struct {
	// Params is the parameter set that produced this result.
	Params Params `json:"params"`
	// TotalReturn is final equity / initial equity - 1 (0.25 = +25%).
	TotalReturn float64 `json:"total_return"`
	// CAGR is the compound annual growth rate over the data's time span;
	// -1 if the account was wiped out, 0 if not representable.
	CAGR float64 `json:"cagr"`
	// Sharpe is the annualised Sharpe ratio of per-bar returns with a zero
	// risk-free rate: mean/stddev × √(bars per year), where bars per year is
	// inferred from the data (8,766 for gap-free hourly bars). Using the
	// observed rather than the nominal bar rate annualises data with gaps,
	// such as weekday-only markets, correctly.
	Sharpe float64 `json:"sharpe"`
	// MaxDrawdown is the largest peak-to-trough fall of equity measured at
	// bar closes, as a positive fraction (0.2 = 20% below the peak).
	MaxDrawdown float64 `json:"max_drawdown"`
	// Trades counts closed round trips (entry and exit of one position).
	Trades int `json:"trades"`
	// WinRate is the fraction of Trades whose P&L after costs is positive.
	WinRate float64 `json:"win_rate"`
	// Equity is the equity curve, one value per bar starting at 1; filled
	// only by [RunWithEquity].
	Equity []float64 `json:"equity,omitempty"`
}

// Equal reports whether r and other are bit-for-bit identical, including
// the equity curves. It is the comparison the distributed test needs:
// stricter than comparing fields with ==, which treats 0 and -0 as equal.
func (r Result) Equal(other Result) bool {
	if r.Params != other.Params || r.Trades != other.Trades || len(r.Equity) != len(other.Equity) {
		return false
	}
	pairs := [...][2]float64{
		{r.TotalReturn, other.TotalReturn},
		{r.CAGR, other.CAGR},
		{r.Sharpe, other.Sharpe},
		{r.MaxDrawdown, other.MaxDrawdown},
		{r.WinRate, other.WinRate},
	}
	for _, pair := range pairs {
		if math.Float64bits(pair[0]) != math.Float64bits(pair[1]) {
			return false
		}
	}
	for i := range r.Equity {
		if math.Float64bits(r.Equity[i]) != math.Float64bits(other.Equity[i]) {
			return false
		}
	}
	return true
}

// performance accumulates equity statistics in one pass: drawdown and the
// mean and variance of per-bar returns (Welford's algorithm, which stays
// accurate without storing the returns).
type performance struct {
	observed    int
	previous    float64 // equity at the previous close
	peak        float64
	maxDrawdown float64
	returns     int
	meanReturn  float64
	sumSquares  float64 // Σ(r - mean)², Welford's M2
}

// newPerformance returns an empty accumulator.
func newPerformance() performance {
	return performance{}
}

// observe adds the equity at the next bar close.
func (m *performance) observe(equity float64) {
	if equity > m.peak {
		m.peak = equity
	}
	if m.peak > 0 {
		if drawdown := 1 - equity/m.peak; drawdown > m.maxDrawdown {
			m.maxDrawdown = drawdown
		}
	}
	if m.observed > 0 {
		ret := 0.0 // after a wipe-out equity stays 0; count that as no change
		if m.previous > 0 {
			ret = equity/m.previous - 1
		}
		m.returns++
		delta := ret - m.meanReturn
		m.meanReturn += delta / float64(m.returns)
		m.sumSquares += float64(delta * (ret - m.meanReturn))
	}
	m.observed++
	m.previous = equity
}

// result turns the accumulated statistics into a Result.
func (m *performance) result(p Params, bars []Bar, acct account) Result {
	final := m.previous
	years := float64(bars[len(bars)-1].Time-bars[0].Time) / secondsPerYear

	cagr := -1.0
	if final > 0 {
		cagr = deterministicPow(final, 1/years) - 1
	}

	sharpe := 0.0
	if m.returns >= 2 && m.sumSquares > 0 {
		barsPerYear := float64(len(bars)-1) / years
		stddev := math.Sqrt(m.sumSquares / float64(m.returns-1))
		sharpe = m.meanReturn / stddev * math.Sqrt(barsPerYear)
	}

	winRate := 0.0
	if acct.trades > 0 {
		winRate = float64(acct.wins) / float64(acct.trades)
	}
	return Result{
		Params:      p,
		TotalReturn: finiteOrZero(final - 1),
		CAGR:        finiteOrZero(cagr),
		Sharpe:      finiteOrZero(sharpe),
		MaxDrawdown: finiteOrZero(m.maxDrawdown),
		Trades:      acct.trades,
		WinRate:     winRate,
	}
}

// finiteOrZero maps NaN and ±Inf to 0 so results stay JSON-encodable.
func finiteOrZero(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}
