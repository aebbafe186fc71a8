package engine

import (
	"slices"
	"testing"
)

func TestGridParamsOrderAndSkipping(t *testing.T) {
	g := Grid{Fast: []int{5, 10}, Slow: []int{10, 20}, Kinds: []string{KindEMA, "bogus", KindSMA}, FeeBps: 1, SlippageBps: 2}
	want := []Params{
		{Fast: 5, Slow: 10, Kind: KindEMA, FeeBps: 1, SlippageBps: 2},
		{Fast: 5, Slow: 20, Kind: KindEMA, FeeBps: 1, SlippageBps: 2},
		// 10/10 skipped: fast must be below slow.
		{Fast: 10, Slow: 20, Kind: KindEMA, FeeBps: 1, SlippageBps: 2},
		// "bogus" skipped entirely.
		{Fast: 5, Slow: 10, Kind: KindSMA, FeeBps: 1, SlippageBps: 2},
		{Fast: 5, Slow: 20, Kind: KindSMA, FeeBps: 1, SlippageBps: 2},
		{Fast: 10, Slow: 20, Kind: KindSMA, FeeBps: 1, SlippageBps: 2},
	}
	if got := g.Params(); !slices.Equal(got, want) {
		t.Errorf("Params() =\n%v\nwant\n%v", got, want)
	}
	if got := (Grid{}).Params(); len(got) != 0 {
		t.Errorf("empty grid gave %v", got)
	}
}

func TestDefaultGrid(t *testing.T) {
	params := DefaultGrid().Params()
	if len(params) != 2638 {
		t.Errorf("DefaultGrid has %d parameter sets, documented as 2638", len(params))
	}
	if len(params) < 2000 || len(params) > 4000 {
		t.Errorf("DefaultGrid has %d parameter sets, want 2000-4000", len(params))
	}
	seen := map[Params]bool{}
	kinds := map[string]int{}
	for _, p := range params {
		if err := p.Validate(); err != nil {
			t.Fatalf("invalid default params %v: %v", p, err)
		}
		if seen[p] {
			t.Fatalf("duplicate params %v", p)
		}
		seen[p] = true
		kinds[p.Kind]++
	}
	if kinds[KindSMA] != kinds[KindEMA] || kinds[KindSMA] == 0 {
		t.Errorf("kinds = %v, want equal non-zero counts of sma and ema", kinds)
	}
	if !slices.Equal(DefaultGrid().Params(), params) {
		t.Error("DefaultGrid().Params() is not deterministic")
	}
}
