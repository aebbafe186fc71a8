package engine

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"slices"
	"strconv"
)

// ResultsCSVHeader is the header row of [WriteResultsCSV].
var ResultsCSVHeader = []string{
	"rank", "kind", "fast", "slow", "fee_bps", "slippage_bps",
	"sharpe", "total_return", "cagr", "max_drawdown", "trades", "win_rate",
}

// ranks returns the rank (1 = best, in [TopN]'s order) of each result of rs.
func ranks(rs []Result) []int {
	order := make([]int, len(rs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return compareResults(rs[a], rs[b]) })
	out := make([]int, len(rs))
	for rank, i := range order {
		out[i] = rank + 1
	}
	return out
}

// WriteResultsCSV writes every result of rs, in the order given (a sweep's
// grid order), as CSV with [ResultsCSVHeader]: the rank among rs, the
// parameters, then the metrics as fractions (0.25 = 25%), each number
// written with the fewest digits that parse back to the same float64, so a
// spreadsheet or pandas sees exactly what the engine computed.
func WriteResultsCSV(w io.Writer, rs []Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ResultsCSVHeader); err != nil {
		return err
	}
	num := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	for i, rank := range ranks(rs) {
		r := rs[i]
		p := r.Params
		if err := cw.Write([]string{
			strconv.Itoa(rank), p.Kind, strconv.Itoa(p.Fast), strconv.Itoa(p.Slow), num(p.FeeBps), num(p.SlippageBps),
			num(r.Sharpe), num(r.TotalReturn), num(r.CAGR), num(r.MaxDrawdown), strconv.Itoa(r.Trades), num(r.WinRate),
		}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// rankedResult is one line of [WriteResultsJSONL]: the result's own JSON
// with its rank beside it.
type rankedResult struct {
	Rank int `json:"rank"`
	Result
}

// WriteResultsJSONL writes every result of rs, in the order given, as JSON
// lines: one object per result, the JSON of [Result] (without the equity
// curve) plus "rank", for example
//
//	{"rank":1,"params":{"fast":12,"slow":90,"kind":"ema","fee_bps":4,"slippage_bps":2},"total_return":0.31,…}
//
// Floats round-trip exactly, so the lines decode to the very results.
func WriteResultsJSONL(w io.Writer, rs []Result) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i, rank := range ranks(rs) {
		r := rs[i]
		r.Equity = nil
		if err := enc.Encode(rankedResult{Rank: rank, Result: r}); err != nil {
			return err
		}
	}
	return bw.Flush()
}
