package engine

import (
	"cmp"
	"slices"
)

// TopN returns the n best results, best first, without modifying results.
// Results are ordered by Sharpe descending, then TotalReturn descending,
// then Fast, Slow, Kind, FeeBps and SlippageBps ascending. The full
// tie-break makes the ranking a total order, so the winner never depends
// on the order in which workers happened to report. n ≤ 0 yields an empty
// slice; n larger than len(results) yields all of them.
func TopN(results []Result, n int) []Result {
	if n <= 0 {
		return []Result{}
	}
	ranked := slices.Clone(results)
	slices.SortStableFunc(ranked, compareResults)
	return ranked[:min(n, len(ranked))]
}

// compareResults orders a before b when a ranks higher.
func compareResults(a, b Result) int {
	if c := cmp.Compare(b.Sharpe, a.Sharpe); c != 0 {
		return c
	}
	if c := cmp.Compare(b.TotalReturn, a.TotalReturn); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Params.Fast, b.Params.Fast); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Params.Slow, b.Params.Slow); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Params.Kind, b.Params.Kind); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Params.FeeBps, b.Params.FeeBps); c != 0 {
		return c
	}
	return cmp.Compare(a.Params.SlippageBps, b.Params.SlippageBps)
}
