package engine

import (
	"fmt"
	"io"
	"strings"
)

// tableColumn is one column of the plain-text results table.
type tableColumn struct {
	header string
	value  func(rank int, r Result) string
}

// tableColumns defines the table layout in one place.
var tableColumns = []tableColumn{
	{"rank", func(rank int, _ Result) string { return fmt.Sprint(rank) }},
	{"kind", func(_ int, r Result) string { return r.Params.Kind }},
	{"fast", func(_ int, r Result) string { return fmt.Sprint(r.Params.Fast) }},
	{"slow", func(_ int, r Result) string { return fmt.Sprint(r.Params.Slow) }},
	{"sharpe", func(_ int, r Result) string { return fmt.Sprintf("%.3f", r.Sharpe) }},
	{"return", func(_ int, r Result) string { return formatPercent(r.TotalReturn) }},
	{"cagr", func(_ int, r Result) string { return formatPercent(r.CAGR) }},
	{"max_dd", func(_ int, r Result) string { return formatPercent(r.MaxDrawdown) }},
	{"trades", func(_ int, r Result) string { return fmt.Sprint(r.Trades) }},
	{"win_rate", func(_ int, r Result) string { return formatPercent(r.WinRate) }},
}

// WriteTable writes rs as an aligned plain-text table with a header row,
// ranking rows 1, 2, … in the order given (pass the output of [TopN]).
// Columns are right-aligned so numbers line up for quick comparison in a
// terminal or log. It returns the first write error.
func WriteTable(w io.Writer, rs []Result) error {
	cells := make([][]string, 0, len(rs)+1)
	header := make([]string, len(tableColumns))
	for c, col := range tableColumns {
		header[c] = col.header
	}
	cells = append(cells, header)
	for i, r := range rs {
		row := make([]string, len(tableColumns))
		for c, col := range tableColumns {
			row[c] = col.value(i+1, r)
		}
		cells = append(cells, row)
	}

	widths := make([]int, len(tableColumns))
	for _, row := range cells {
		for c, cell := range row {
			widths[c] = max(widths[c], len(cell))
		}
	}
	var sb strings.Builder
	for _, row := range cells {
		for c, cell := range row {
			if c > 0 {
				sb.WriteString("  ")
			}
			fmt.Fprintf(&sb, "%*s", widths[c], cell)
		}
		sb.WriteByte('\n')
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// formatPercent renders a fraction as a percentage with two decimals.
func formatPercent(fraction float64) string {
	return fmt.Sprintf("%.2f%%", 100*fraction)
}
