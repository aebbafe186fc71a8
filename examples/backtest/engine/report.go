package engine

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// reportTemplate is the HTML page of [WriteHTMLReport]. It lives in its
// own file so the markup can be read and edited as HTML.
//
//go:embed report.html.tmpl
var reportTemplate string

// reportTopRows is the number of ranked rows in the report's table.
const reportTopRows = 10

// reportPage is the data handed to reportTemplate. Everything is
// preformatted strings so the template holds no logic.
type reportPage struct {
	DataRange string
	BarCount  int
	SetCount  int
	Run       []summaryRow
	Exports   []string // hrefs of the result files
	Best      []summaryRow
	BestName  string
	Heatmaps  []heatmapView
	Equity    *equityView
	TopHeader []string
	TopRows   [][]string
}

// summaryRow is one label/value line of the best set's summary.
type summaryRow struct {
	Label, Value string
}

// RunInfo describes the run behind a report, for its "Run" table. Zero
// fields are left out.
type RunInfo struct {
	Date       time.Time     // when the sweep ran (shown in UTC)
	Fleet      string        // where it ran, e.g. "2 embedded workers"
	Workers    int           // workers, where known
	Wall       time.Duration // the sweep's wall time
	Grid       *Grid         // the sweep's grid
	DataSource string        // where the bars came from, e.g. a file name
	Version    string        // the program's version
	// Exports are links to files holding every result (CSV, JSON lines),
	// relative to the report.
	Exports []string
}

// WriteHTMLReport writes a self-contained HTML page summarising a sweep:
// the run's details, the best parameter set's metrics, a Sharpe heat map
// over the (fast, slow) grid for every kind in rs (coloured from the lowest
// to the highest Sharpe found, white at the median, the best cell
// outlined), the equity curve of best (run it with [RunWithEquity] to have
// one) beside buy and hold, and the top results as a table. The page uses
// inline SVG and CSS only (no scripts, no external assets) so it can be
// archived as a CI artifact or mailed and still render anywhere; tooltips
// use SVG <title> elements. Output is deterministic: the only date on it is
// run.Date. All text goes through html/template escaping. Nothing is
// written if rendering fails.
func WriteHTMLReport(w io.Writer, rs []Result, best Result, bars []Bar, run RunInfo) error {
	tmpl, err := template.New("report").Parse(reportTemplate)
	if err != nil {
		return fmt.Errorf("report: parse template: %w", err)
	}
	page := reportPage{
		DataRange: describeDataRange(bars),
		BarCount:  len(bars),
		SetCount:  len(rs),
		Run:       describeRun(run, bars),
		Exports:   run.Exports,
		Best:      summarise(best),
		BestName:  best.Params.String(),
		Heatmaps:  buildHeatmaps(rs),
		Equity:    buildEquityChart(best.Equity, bars),
	}
	for _, col := range tableColumns {
		page.TopHeader = append(page.TopHeader, col.header)
	}
	for i, r := range TopN(rs, reportTopRows) {
		row := make([]string, len(tableColumns))
		for c, col := range tableColumns {
			row[c] = col.value(i+1, r)
		}
		page.TopRows = append(page.TopRows, row)
	}

	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, page); err != nil {
		return fmt.Errorf("report: render: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// summarise lists the best set's parameters and metrics for the page.
func summarise(best Result) []summaryRow {
	p := best.Params
	return []summaryRow{
		{"Moving average", fmt.Sprintf("%s, fast %d, slow %d", p.Kind, p.Fast, p.Slow)},
		{"Costs per side", fmt.Sprintf("fee %g bps, slippage %g bps", p.FeeBps, p.SlippageBps)},
		{"Sharpe ratio", fmt.Sprintf("%.3f", best.Sharpe)},
		{"Total return", formatPercent(best.TotalReturn)},
		{"CAGR", formatPercent(best.CAGR)},
		{"Max drawdown", formatPercent(best.MaxDrawdown)},
		{"Closed trades", fmt.Sprint(best.Trades)},
		{"Win rate", formatPercent(best.WinRate)},
	}
}

// describeRun lists run's details that are set.
func describeRun(run RunInfo, bars []Bar) []summaryRow {
	var rows []summaryRow
	add := func(label, value string) {
		if value != "" {
			rows = append(rows, summaryRow{label, value})
		}
	}
	if !run.Date.IsZero() {
		add("Date", run.Date.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	fleet := run.Fleet
	if run.Workers > 0 && !strings.Contains(fleet, "worker") {
		fleet = strings.TrimSpace(fmt.Sprintf("%s (%d workers)", fleet, run.Workers))
	}
	add("Fleet", fleet)
	if run.Wall > 0 {
		add("Wall time", run.Wall.Round(time.Millisecond).String())
	}
	if run.Grid != nil {
		add("Grid", run.Grid.String())
	}
	data := run.DataSource
	switch {
	case len(bars) > 0 && data != "":
		data += ", " + describeDataRange(bars)
	case len(bars) > 0:
		data = fmt.Sprintf("%d bars, %s", len(bars), describeDataRange(bars))
	}
	add("Data", data)
	add("Version", run.Version)
	return rows
}

// describeDataRange renders the time span of bars in UTC.
func describeDataRange(bars []Bar) string {
	if len(bars) == 0 {
		return "no bars"
	}
	const layout = "2006-01-02 15:04 MST"
	first := time.Unix(bars[0].Time, 0).UTC().Format(layout)
	last := time.Unix(bars[len(bars)-1].Time, 0).UTC().Format(layout)
	return first + " to " + last
}
