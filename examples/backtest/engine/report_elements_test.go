package engine

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// renderReport renders the report of a small sweep with every RunInfo field set.
func renderReport(t *testing.T) (page string, results []Result, best Result, bars []Bar) {
	t.Helper()
	bars = Synthetic(1500, 4)
	results, best = sweepForReport(t, bars)
	grid := Grid{Fast: []int{2, 3, 5, 8}, Slow: []int{10, 20, 40}, Kinds: []string{KindSMA, KindEMA}, FeeBps: 4, SlippageBps: 2}
	run := RunInfo{
		Date:       time.Date(2026, 12, 1, 14, 5, 6, 0, time.FixedZone("CET", 3600)),
		Fleet:      "3 embedded workers",
		Workers:    3,
		Wall:       1234567 * time.Microsecond,
		Grid:       &grid,
		DataSource: "bars.csv",
		Version:    "v1.2.3 (abc123)",
		Exports:    []string{"report.csv", "report.jsonl"},
	}
	var buf bytes.Buffer
	if err := WriteHTMLReport(&buf, results, best, bars, run); err != nil {
		t.Fatal(err)
	}
	return buf.String(), results, best, bars
}

func TestReportRunDetails(t *testing.T) {
	page, _, _, _ := renderReport(t)
	for _, want := range []string{
		"<th>Date</th><td>2026-12-01 13:05:06 UTC</td>",
		"<th>Fleet</th><td>3 embedded workers</td>",
		"<th>Wall time</th><td>1.235s</td>",
		"<th>Grid</th><td>fast 2,3,5,8 (4), slow 10,20,40 (3), kinds sma,ema, fee 4 bps, slippage 2 bps per side, 24 valid sets</td>",
		"<th>Data</th><td>bars.csv, 2020-01-01 00:00 UTC to 2020-03-03 11:00 UTC</td>",
		"<th>Version</th><td>v1.2.3 (abc123)</td>",
		`<a class="export" href="report.csv">report.csv</a>, <a class="export" href="report.jsonl">report.jsonl</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	var buf bytes.Buffer
	if err := WriteHTMLReport(&buf, nil, Result{}, nil, RunInfo{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<h2>Run</h2>") {
		t.Error("a report without run details has a Run table")
	}
}

func TestReportBestCellMarked(t *testing.T) {
	page, _, best, _ := renderReport(t)
	if n := strings.Count(page, `class="best-cell"`); n != 1 {
		t.Fatalf("%d best cells marked, want 1", n)
	}
	var inKind string
	for _, svg := range svgElements(t, page) {
		if strings.Contains(svg, `class="best-cell"`) {
			inKind = regexp.MustCompile(`Sharpe heat map for (\w+)`).FindStringSubmatch(svg)[1]
			// The outline sits exactly on the best set's cell.
			cell := regexp.MustCompile(fmt.Sprintf(`<rect x="([\d.]+)" y="([\d.]+)"[^>]*><title>%s fast %d slow %d:`,
				best.Params.Kind, best.Params.Fast, best.Params.Slow)).FindStringSubmatch(svg)
			mark := regexp.MustCompile(`class="best-cell" x="([\d.]+)" y="([\d.]+)"`).FindStringSubmatch(svg)
			if cell == nil || mark == nil || cell[1] != mark[1] || cell[2] != mark[2] {
				t.Errorf("best cell at %v, outline at %v", cell, mark)
			}
		}
	}
	if inKind != best.Params.Kind {
		t.Errorf("best cell marked in the %q map, best is %s", inKind, best.Params)
	}
}

func TestReportSharpeScaleCentredOnResults(t *testing.T) {
	page, results, _, _ := renderReport(t)
	sharpes := make([]float64, len(results))
	for i, r := range results {
		sharpes[i] = r.Sharpe
	}
	slices.Sort(sharpes)
	lo, hi := sharpes[0], sharpes[len(sharpes)-1]
	median := sharpes[len(sharpes)/2-1] + (sharpes[len(sharpes)/2]-sharpes[len(sharpes)/2-1])/2
	for _, want := range []string{fmt.Sprintf("%+.2f max", hi), fmt.Sprintf("%+.2f median", median), fmt.Sprintf("%+.2f min", lo)} {
		if !strings.Contains(html.UnescapeString(page), ">"+want+"<") { // html/template writes + as &#43;
			t.Errorf("legend lacks %q", want)
		}
	}
	// The worst and best cells take the ends of the scale, whatever their sign.
	for _, r := range results {
		want := ""
		switch r.Sharpe {
		case lo:
			want = scaleColor(0)
		case hi:
			want = scaleColor(1)
		default:
			continue
		}
		cell := fmt.Sprintf(`fill="%s"><title>%s fast %d slow %d:`, want, r.Params.Kind, r.Params.Fast, r.Params.Slow)
		if !strings.Contains(page, cell) {
			t.Errorf("cell %s (Sharpe %.3f) is not coloured %s", r.Params, r.Sharpe, want)
		}
	}
	s := sharpeScale{min: -1, median: 0.5, max: 0.6}
	for v, want := range map[float64]float64{-1: 0, -0.25: 0.25, 0.5: 0.5, 0.55: 0.75, 0.6: 1} {
		if got := s.position(v); math.Abs(got-want) > 1e-12 {
			t.Errorf("position(%v) = %v, want %v", v, got, want)
		}
	}
	if got := (sharpeScale{min: 2, median: 2, max: 2}).position(2); got != 0.5 {
		t.Errorf("a constant scale puts its value at %v, want the middle", got)
	}
}

func TestReportEquityChart(t *testing.T) {
	page, _, best, bars := renderReport(t)
	var equity string
	for _, svg := range svgElements(t, page) {
		if strings.Contains(svg, `class="equity"`) {
			equity = svg
		}
	}
	hold := regexp.MustCompile(`class="hold-path" d="([^"]*)"`).FindStringSubmatch(equity)
	strategy := regexp.MustCompile(`class="equity-path" d="([^"]*)"`).FindStringSubmatch(equity)
	if hold == nil || strategy == nil {
		t.Fatal("equity chart lacks the buy-and-hold or the strategy line")
	}
	if strings.Count(hold[1], ",") != strings.Count(strategy[1], ",") {
		t.Error("buy and hold and the strategy have different point counts")
	}
	for _, want := range []string{">buy and hold</text>", ">strategy</text>", "buy and hold: equity from 1 to "} {
		if !strings.Contains(equity, want) {
			t.Errorf("equity chart lacks %q", want)
		}
	}
	bh := BuyAndHold(bars)
	if bh[0] != 1 || bh[len(bh)-1] != bars[len(bars)-1].Close/bars[0].Close || BuyAndHold(nil) != nil {
		t.Errorf("BuyAndHold = %v … %v", bh[0], bh[len(bh)-1])
	}
	if len(best.Equity) != len(bars) {
		t.Fatal("best has no equity curve")
	}
	// Without bars of the curve's length there is no benchmark to draw.
	if v := buildEquityChart(best.Equity, bars[:10]); v.HoldPath != "" || len(v.Legend) != 1 {
		t.Error("buy and hold drawn for bars that do not match the curve")
	}
}

// TestEquityChartTicksOfALongRun draws the curve of the issue: a 300,000-bar
// run whose equity rose from a low of 0.71 to 17.7 million.
func TestEquityChartTicksOfALongRun(t *testing.T) {
	curve := make([]float64, 300_000)
	growth := math.Pow(17668719.4957/0.7086, 1/float64(len(curve)-2))
	curve[0], curve[1] = 1, 0.7086
	for i := 2; i < len(curve); i++ {
		curve[i] = curve[i-1] * growth
	}
	v := buildEquityChart(curve, nil)
	if v.Scale != "log" {
		t.Errorf("scale %s, want log", v.Scale)
	}
	for _, tick := range v.YTicks {
		if strings.HasPrefix(tick.Label, "-") {
			t.Errorf("negative tick %q for a positive curve", tick.Label)
		}
		// Right-aligned at the margin: at 11px a digit is at most 7 units wide.
		if width := 7 * utf8.RuneCountInString(tick.Label); float64(width) > equityMarginLeft-6 {
			t.Errorf("label %q (%d units) is clipped by the %g-unit margin", tick.Label, width, equityMarginLeft)
		}
	}
	var labels []string
	for _, tick := range v.YTicks {
		labels = append(labels, tick.Label)
	}
	if got := strings.Join(labels, " "); got != "1 100 10k 1M" {
		t.Errorf("ticks %q", got)
	}
	if lin := buildEquityChart([]float64{1, 0.8, 1.3}, nil); lin.Scale != "linear" || len(lin.YTicks) < 3 {
		t.Errorf("a small range: scale %s, %d ticks", lin.Scale, len(lin.YTicks))
	}
}
