package engine

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// handBars builds hourly bars from (open, close) pairs; high and low just
// bracket them so the bars are valid.
func handBars(openClose ...[2]float64) []Bar {
	bars := make([]Bar, len(openClose))
	for i, oc := range openClose {
		bars[i] = Bar{
			Time: SyntheticStart + int64(i)*3600,
			Open: oc[0], Close: oc[1],
			High: math.Max(oc[0], oc[1]), Low: math.Min(oc[0], oc[1]),
			Volume: 1,
		}
	}
	return bars
}

// tradeScenario is a tiny series with a known trade sequence for SMA 1/2,
// where the signal reduces to "long after an up-close, short after a
// down-close":
//
//	bar 1 closes up       → go long at bar 2's open (110)
//	bar 3 closes down     → flip to short at bar 4's open (110): 2 sides
//	bar 5 closes flat     → tie: keep the short
//	bar 6 closes up       → flip to long at bar 7's open (108.9): 2 sides
func tradeScenario() ([]Bar, Params) {
	bars := handBars(
		[2]float64{100, 100},
		[2]float64{100, 110},
		[2]float64{110, 121},
		[2]float64{121, 110},
		[2]float64{110, 99},
		[2]float64{99, 99},
		[2]float64{99, 108.9},
		[2]float64{108.9, 108.9},
	)
	// 7 + 3 bps = 0.1% per side.
	return bars, Params{Fast: 1, Slow: 2, Kind: KindSMA, FeeBps: 7, SlippageBps: 3}
}

func TestRunHandBuiltTrades(t *testing.T) {
	bars, p := tradeScenario()
	const c = 0.001 // cost per side

	positions, err := Positions(bars, p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int8{0, 0, 1, 1, -1, -1, -1, 1}; !slices.Equal(positions, want) {
		t.Fatalf("positions = %v, want %v", positions, want)
	}

	// Hand-computed equity, starting at 1.
	longInvested := 1 - c                    // entry at 110 pays one side
	exitLong := longInvested * (1 - c)       // closed at 110 (flat price), pays one side
	shortInvested := exitLong * (1 - c)      // short entry at 110 pays one side
	shortAt := func(price float64) float64 { // short equity = invested·(2 - price/entry)
		return shortInvested * (2 - price/110)
	}
	exitShort := shortAt(108.9) - shortInvested*108.9/110*c
	finalLong := exitShort * (1 - c)
	wantEquity := []float64{
		1,
		1,
		longInvested * 121 / 110,
		longInvested,
		shortAt(99),
		shortAt(99),
		shortAt(108.9),
		finalLong,
	}
	res, err := RunWithEquity(bars, p)
	if err != nil {
		t.Fatal(err)
	}
	assertFloats(t, "equity", res.Equity, wantEquity, 1e-12)

	if res.Trades != 2 {
		t.Errorf("trades = %d, want 2 (long closed at a loss of its costs, short closed with profit)", res.Trades)
	}
	if res.WinRate != 0.5 {
		t.Errorf("win rate = %v, want 0.5", res.WinRate)
	}
	if got, want := res.TotalReturn, finalLong-1; math.Abs(got-want) > 1e-12 {
		t.Errorf("total return = %.15g, want %.15g", got, want)
	}
	// Worst fall: from the 1.0989 peak (bar 2) to 0.999 (bar 3) = 1/11.
	if got, want := res.MaxDrawdown, 1.0/11; math.Abs(got-want) > 1e-12 {
		t.Errorf("max drawdown = %.15g, want %.15g", got, want)
	}
	// Sharpe from the hand equity with a plain two-pass formula; 7 bars
	// over 7 hours means 8766 bars per (Julian) year.
	if got, want := res.Sharpe, referenceSharpe(wantEquity, 8766); math.Abs(got-want) > 1e-9 {
		t.Errorf("sharpe = %.15g, want %.15g", got, want)
	}
	years := 7.0 / 8766
	if got, want := res.CAGR, math.Pow(finalLong, 1/years)-1; math.Abs(got-want) > 1e-9*math.Abs(want) {
		t.Errorf("CAGR = %.15g, want %.15g", got, want)
	}
}

// referenceSharpe computes the annualised Sharpe ratio of an equity curve
// the textbook way, independently of the streaming implementation.
func referenceSharpe(equity []float64, barsPerYear float64) float64 {
	var returns []float64
	for i := 1; i < len(equity); i++ {
		returns = append(returns, equity[i]/equity[i-1]-1)
	}
	mean := 0.0
	for _, r := range returns {
		mean += r
	}
	mean /= float64(len(returns))
	variance := 0.0
	for _, r := range returns {
		variance += (r - mean) * (r - mean)
	}
	variance /= float64(len(returns) - 1)
	return mean / math.Sqrt(variance) * math.Sqrt(barsPerYear)
}

func TestRunHigherCostsLowerReturns(t *testing.T) {
	bars := Synthetic(2000, 3)
	previous := math.Inf(1)
	for _, bps := range []float64{0, 1, 5, 25} {
		res, err := Run(bars, Params{Fast: 5, Slow: 30, Kind: KindSMA, FeeBps: bps, SlippageBps: bps})
		if err != nil {
			t.Fatal(err)
		}
		if res.Trades == 0 {
			t.Fatal("scenario has no trades; costs would not matter")
		}
		if res.TotalReturn >= previous {
			t.Errorf("return with %v+%v bps = %v, not below the cheaper run's %v", bps, bps, res.TotalReturn, previous)
		}
		previous = res.TotalReturn
	}
}

func TestRunHasNoLookAhead(t *testing.T) {
	base := Synthetic(600, 7)
	p := Params{Fast: 5, Slow: 20, Kind: KindEMA}
	basePositions, err := Positions(base, p)
	if err != nil {
		t.Fatal(err)
	}
	baseResult, err := RunWithEquity(base, p)
	if err != nil {
		t.Fatal(err)
	}
	laterChanged := 0
	for k := 30; k < len(base)-1; k += 37 {
		shocked := slices.Clone(base)
		shocked[k].Close *= 1.5 // a huge move the strategy must not see early
		shocked[k].High = math.Max(shocked[k].High, shocked[k].Close)
		positions, err := Positions(shocked, p)
		if err != nil {
			t.Fatal(err)
		}
		// The position held during bar k was decided at close k-1.
		if !slices.Equal(positions[:k+1], basePositions[:k+1]) {
			t.Fatalf("changing close of bar %d changed positions at or before bar %d", k, k)
		}
		res, err := RunWithEquity(shocked, p)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Equity[:k], baseResult.Equity[:k]) {
			t.Fatalf("changing close of bar %d changed equity before bar %d", k, k)
		}
		if !slices.Equal(positions[k+1:], basePositions[k+1:]) {
			laterChanged++
		}
	}
	if laterChanged == 0 {
		t.Fatal("no shock changed any later position: the test is not sensitive")
	}
}

func TestRunExecutesAtNextOpen(t *testing.T) {
	bars, p := tradeScenario()
	base, err := RunWithEquity(bars, p)
	if err != nil {
		t.Fatal(err)
	}
	// Entering long at a lower open of bar 2 must raise equity from bar 2
	// on, and only from there.
	cheaper := slices.Clone(bars)
	cheaper[2].Open, cheaper[2].Low = 100, 100
	res, err := RunWithEquity(cheaper, p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Equity[:2], base.Equity[:2]) {
		t.Errorf("equity before the fill changed: %v vs %v", res.Equity[:2], base.Equity[:2])
	}
	if want := (1 - 0.001) * 121 / 100; math.Abs(res.Equity[2]-want) > 1e-12 {
		t.Errorf("equity at bar 2 = %.15g, want fill at the open of bar 2: %.15g", res.Equity[2], want)
	}
}

func TestRunFlatSeriesIsNaNFree(t *testing.T) {
	bars := handBars([2]float64{5, 5}, [2]float64{5, 5}, [2]float64{5, 5}, [2]float64{5, 5})
	res, err := Run(bars, Params{Fast: 1, Slow: 3, Kind: KindSMA})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Params: res.Params} // everything zero: no trades, no variance
	if !res.Equal(want) {
		t.Errorf("flat series result = %+v, want all zero metrics", res)
	}
}

func TestRunShortWipeOutStopsTrading(t *testing.T) {
	// Bar 1 closes down → short at bar 2's open of 30; bar 2 still closes
	// down (80 < 90) but far above twice the entry, wiping the account out.
	// Bar 3 closes up, which would normally trigger a trade at bar 4.
	bars := handBars([2]float64{100, 100}, [2]float64{100, 90}, [2]float64{30, 80}, [2]float64{80, 85}, [2]float64{85, 70})
	res, err := RunWithEquity(bars, Params{Fast: 1, Slow: 2, Kind: KindSMA})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{1, 1, 0, 0, 0}; !slices.Equal(res.Equity, want) {
		t.Errorf("equity = %v, want %v", res.Equity, want)
	}
	if res.TotalReturn != -1 || res.CAGR != -1 || res.MaxDrawdown != 1 {
		t.Errorf("wipe-out metrics = %+v, want return -1, CAGR -1, drawdown 1", res)
	}
	if res.Trades != 1 || res.WinRate != 0 {
		t.Errorf("trades = %d, win rate %v; want 1 losing trade", res.Trades, res.WinRate)
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	good := Synthetic(50, 1)
	p := Params{Fast: 2, Slow: 5, Kind: KindSMA}
	for _, tc := range []struct {
		name    string
		bars    []Bar
		params  Params
		wantErr string
	}{
		{"invalid params", good, Params{Fast: 5, Slow: 5, Kind: KindSMA}, "below slow"},
		{"no bars", nil, p, "at least 2 bars"},
		{"one bar", good[:1], p, "at least 2 bars"},
		{"zero open", withBar(good, 10, func(b *Bar) { b.Open = 0 }), p, "bar 10"},
		{"NaN close", withBar(good, 11, func(b *Bar) { b.Close = math.NaN() }), p, "bar 11"},
		{"infinite close", withBar(good, 12, func(b *Bar) { b.Close = math.Inf(1) }), p, "bar 12"},
		{"repeated time", withBar(good, 13, func(b *Bar) { b.Time = good[12].Time }), p, "does not increase"},
	} {
		_, err := Run(tc.bars, tc.params)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Run error = %v, want it to mention %q", tc.name, err, tc.wantErr)
		}
	}
}

// withBar returns a copy of bars with bar i edited.
func withBar(bars []Bar, i int, edit func(*Bar)) []Bar {
	out := slices.Clone(bars)
	edit(&out[i])
	return out
}

func BenchmarkRun(b *testing.B) {
	bars := Synthetic(8760, 1)
	p := Params{Fast: 12, Slow: 26, Kind: KindEMA, FeeBps: DefaultFeeBps, SlippageBps: DefaultSlippageBps}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(bars, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunAllDefaultGrid measures the whole flagship sweep (2,638
// sets over a year of hourly bars) in-process, the baseline the
// distributed run is compared with.
func BenchmarkRunAllDefaultGrid(b *testing.B) {
	bars := Synthetic(8760, 1)
	params := DefaultGrid().Params()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RunAll(bars, params, 0); err != nil {
			b.Fatal(err)
		}
	}
}
