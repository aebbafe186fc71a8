package engine

import (
	"slices"
	"testing"
)

func TestTopNOrdering(t *testing.T) {
	r := func(sharpe, ret float64, fast, slow int, kind string) Result {
		return Result{Params: Params{Fast: fast, Slow: slow, Kind: kind}, Sharpe: sharpe, TotalReturn: ret}
	}
	results := []Result{
		r(0.5, 0.1, 5, 20, KindSMA),  // 6th
		r(2.0, 0.3, 9, 30, KindSMA),  // 1st: best Sharpe
		r(1.0, 0.2, 5, 30, KindSMA),  // 5th: ties on Sharpe, return, fast; higher slow
		r(1.0, 0.2, 5, 20, KindSMA),  // 4th: ties on everything up to kind; "sma" > "ema"
		r(1.0, 0.9, 50, 90, KindEMA), // 2nd: same Sharpe, better return
		r(1.0, 0.2, 5, 20, KindEMA),  // 3rd
		r(-1, 5, 2, 3, KindEMA),      // 7th despite the huge return
	}
	original := slices.Clone(results)
	got := TopN(results, 10)
	want := []Result{results[1], results[4], results[5], results[3], results[2], results[0], results[6]}
	if !slices.EqualFunc(got, want, Result.Equal) {
		t.Errorf("TopN order:\n got %v\nwant %v", got, want)
	}
	if !slices.EqualFunc(results, original, Result.Equal) {
		t.Error("TopN modified its input")
	}
	// Input order must not matter.
	reversed := slices.Clone(results)
	slices.Reverse(reversed)
	if !slices.EqualFunc(TopN(reversed, 10), want, Result.Equal) {
		t.Error("TopN depends on input order")
	}
	if top2 := TopN(results, 2); !slices.EqualFunc(top2, want[:2], Result.Equal) {
		t.Errorf("TopN(2) = %v", top2)
	}
	if got := TopN(results, 0); got == nil || len(got) != 0 {
		t.Errorf("TopN(0) = %v, want empty", got)
	}
	if got := TopN(nil, 3); len(got) != 0 {
		t.Errorf("TopN(nil, 3) = %v, want empty", got)
	}
}
