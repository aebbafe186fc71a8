package engine

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
)

// sweepForReport runs a small grid and returns all results and the best
// one with its equity curve.
func sweepForReport(t *testing.T, bars []Bar) ([]Result, Result) {
	t.Helper()
	grid := Grid{Fast: []int{2, 3, 5, 8}, Slow: []int{10, 20, 40}, Kinds: []string{KindSMA, KindEMA}, FeeBps: 4, SlippageBps: 2}
	results, err := RunAll(bars, grid.Params(), 0)
	if err != nil {
		t.Fatal(err)
	}
	best, err := RunWithEquity(bars, TopN(results, 1)[0].Params)
	if err != nil {
		t.Fatal(err)
	}
	return results, best
}

var svgPattern = regexp.MustCompile(`(?s)<svg\b.*?</svg>`)

// svgElements parses every inline SVG of page as XML and returns them.
func svgElements(t *testing.T, page string) []string {
	t.Helper()
	svgs := svgPattern.FindAllString(page, -1)
	for i, svg := range svgs {
		decoder := xml.NewDecoder(strings.NewReader(svg))
		for {
			_, err := decoder.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("svg %d is not well-formed XML: %v", i, err)
			}
		}
	}
	return svgs
}

func TestWriteHTMLReport(t *testing.T) {
	bars := Synthetic(1500, 4)
	results, best := sweepForReport(t, bars)
	var buf bytes.Buffer
	if err := WriteHTMLReport(&buf, results, best, bars, RunInfo{}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
		t.Error("page is not a complete HTML document")
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "https://") || strings.Contains(page, "src=") {
		t.Error("page is not self-contained or uses scripts")
	}

	svgs := svgElements(t, page)
	var heatmaps, equity []string
	for _, svg := range svgs {
		switch {
		case strings.Contains(svg, `class="heatmap"`):
			heatmaps = append(heatmaps, svg)
		case strings.Contains(svg, `class="equity"`):
			equity = append(equity, svg)
		}
	}
	if len(heatmaps) != 2 || len(equity) != 1 {
		t.Fatalf("got %d heat maps and %d equity charts, want 2 and 1", len(heatmaps), len(equity))
	}
	for _, svg := range heatmaps {
		// 4 fast × 3 slow, all valid: 12 cells with tooltips.
		if n := strings.Count(svg, "</title></rect>") - strings.Count(svg, `class="best-cell"`); n != 12 {
			t.Errorf("heat map has %d cells with tooltips, want 12", n)
		}
		for _, want := range []string{"<linearGradient", "fast period (bars)", "slow period (bars)", "url(#sharpe-scale-"} {
			if !strings.Contains(svg, want) {
				t.Errorf("heat map lacks %q", want)
			}
		}
	}
	if !strings.Contains(heatmaps[0], "ema fast 2 slow 10: Sharpe") || !strings.Contains(heatmaps[1], "sma fast 8 slow 40: Sharpe") {
		t.Error("heat maps are not ordered by kind or lack cell tooltips")
	}

	path := regexp.MustCompile(`class="equity-path" d="([^"]*)"`).FindStringSubmatch(equity[0])
	if path == nil {
		t.Fatal("equity chart has no path")
	}
	// 1500 points downsampled with stride 2 → bars 0, 2, …, 1498, plus
	// the last bar 1499 so the curve ends at the final equity.
	if points := strings.Count(path[1], ","); points != 751 || !strings.HasPrefix(path[1], "M") {
		t.Errorf("equity path has %d points (want 751), starts %.10q", points, path[1])
	}
	for _, want := range []string{"Best parameter set: " + best.Params.String(), "Sharpe ratio", "Max drawdown", "Top 10 parameter sets"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	var again bytes.Buffer
	if err := WriteHTMLReport(&again, results, best, bars, RunInfo{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two renders of the same report differ")
	}
}

func TestWriteHTMLReportEscapes(t *testing.T) {
	hostile := Result{Params: Params{Fast: 1, Slow: 2, Kind: `<script>alert("x")</script>&`}, Sharpe: 1, Equity: []float64{1, 1.1}}
	var buf bytes.Buffer
	if err := WriteHTMLReport(&buf, []Result{hostile}, hostile, nil, RunInfo{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<script>") {
		t.Error("kind was not escaped")
	}
	if n := len(svgElements(t, buf.String())); n != 2 {
		t.Errorf("got %d SVGs, want heat map and equity chart", n)
	}
}

func TestWriteHTMLReportWithoutData(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTMLReport(&buf, nil, Result{}, nil, RunInfo{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"No results to map", "No equity curve"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("empty report lacks %q", want)
		}
	}
	if err := WriteHTMLReport(failingWriter{}, nil, Result{}, nil, RunInfo{}); err == nil {
		t.Error("write error was swallowed")
	}
}
