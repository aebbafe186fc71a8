package engine

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Equity chart geometry in SVG user units.
const (
	equityWidth        = 860.0
	equityHeight       = 320.0
	equityMarginLeft   = 72.0 // fits maxTickLabel characters at 11px
	equityMarginRight  = 44.0
	equityMarginTop    = 20.0
	equityMarginBottom = 40.0
	equityMaxPoints    = 1200 // enough for a smooth line, small page
	equityYTicks       = 5
	equityXTicks       = 6
)

// equityView is everything the template needs to draw the equity curve.
type equityView struct {
	Width, Height string
	PlotX, PlotY  string
	PlotW, PlotH  string
	PlotRight     string
	Path          string // SVG path data of the strategy's curve
	HoldPath      string // SVG path data of buy and hold; empty without bars
	BaselineY     string // y of equity 1.0; empty when out of range
	Scale         string // "linear" or "log"
	XTicks        []svgTick
	YTicks        []svgTick
	Tooltip       string
	HoldTooltip   string
	Legend        []legendEntry
}

// legendEntry is one line of the chart's legend.
type legendEntry struct {
	X1, X2, Y, TextX, TextY string
	Color, Dash, Label      string
}

// Colours of the equity chart's lines.
const (
	strategyColor = "#2166ac"
	holdColor     = "#b2182b"
)

// BuyAndHold is the equity curve of holding the asset from the first bar's
// close, the benchmark the equity chart draws beside the strategy: element i
// is bars[i].Close / bars[0].Close, so it starts at 1 like the strategy's
// curve. It pays no costs. It returns nil for no bars.
func BuyAndHold(bars []Bar) []float64 {
	if len(bars) == 0 {
		return nil
	}
	out := make([]float64, len(bars))
	for i, b := range bars {
		out[i] = b.Close / bars[0].Close
	}
	return out
}

// buildEquityChart lays out the equity curve; it returns nil when there
// is no curve to draw. Bars supply dates for the x axis and the buy-and-hold
// line when they match the curve in length; otherwise the axis shows bar
// numbers and the chart the strategy alone. The y axis has rounded ticks and
// is logarithmic when the curves are positive and span a decade or more.
func buildEquityChart(equity []float64, bars []Bar) *equityView {
	if len(equity) == 0 {
		return nil
	}
	var hold []float64
	if len(bars) == len(equity) {
		hold = BuyAndHold(bars)
	}
	lo, hi := equity[0], equity[0]
	for _, series := range [][]float64{equity, hold} {
		for _, e := range series {
			lo, hi = math.Min(lo, e), math.Max(hi, e)
		}
	}
	ax := valueAxis(lo, hi, equityYTicks)

	plotW := equityWidth - equityMarginLeft - equityMarginRight
	plotH := equityHeight - equityMarginTop - equityMarginBottom
	last := max(len(equity)-1, 1)
	x := func(i int) float64 { return equityMarginLeft + float64(plotW*float64(i))/float64(last) }
	y := func(e float64) float64 { return equityMarginTop + float64(plotH*(1-ax.fraction(e))) }

	v := &equityView{
		Width: svgNumber(equityWidth), Height: svgNumber(equityHeight),
		PlotX: svgNumber(equityMarginLeft), PlotY: svgNumber(equityMarginTop),
		PlotW: svgNumber(plotW), PlotH: svgNumber(plotH),
		PlotRight: svgNumber(equityMarginLeft + plotW),
		Scale:     "linear",
		Path:      seriesPath(equity, x, y),
		Tooltip:   describeSeries("strategy", equity),
	}
	if ax.log {
		v.Scale = "log"
	}
	v.Legend = append(v.Legend, newLegendEntry(0, strategyColor, "", "strategy"))
	if hold != nil {
		v.HoldPath = seriesPath(hold, x, y)
		v.HoldTooltip = describeSeries("buy and hold", hold)
		v.Legend = append(v.Legend, newLegendEntry(1, holdColor, "5 3", "buy and hold"))
	}

	if ax.lo <= 1 && 1 <= ax.hi {
		v.BaselineY = svgNumber(y(1))
	}
	for _, tick := range ax.ticks {
		v.YTicks = append(v.YTicks, svgTick{X: svgNumber(equityMarginLeft - 6), Y: svgNumber(y(tick.value) + 4), Label: tick.label, LineY: svgNumber(y(tick.value))})
	}
	layout := "2006-01-02"
	if len(bars) == len(equity) && bars[len(bars)-1].Time-bars[0].Time < 3*24*3600 {
		layout = "01-02 15:04" // an intraday span: the date alone would repeat
	}
	for k := range equityXTicks {
		i := last * k / (equityXTicks - 1)
		i = min(i, len(equity)-1)
		label := fmt.Sprintf("bar %d", i)
		if len(bars) == len(equity) {
			label = time.Unix(bars[i].Time, 0).UTC().Format(layout)
		}
		v.XTicks = append(v.XTicks, svgTick{X: svgNumber(x(i)), Y: svgNumber(equityMarginTop + plotH + 18), Label: label})
	}
	return v
}

// newLegendEntry places legend line n in the plot's top left corner.
func newLegendEntry(n int, color, dash, label string) legendEntry {
	x, y := equityMarginLeft+10, equityMarginTop+14+float64(16*float64(n))
	return legendEntry{
		X1: svgNumber(x), X2: svgNumber(x + 22), Y: svgNumber(y),
		TextX: svgNumber(x + 28), TextY: svgNumber(y + 4),
		Color: color, Dash: dash, Label: label,
	}
}

// describeSeries is a curve's tooltip: where it starts, ends, and its range.
func describeSeries(name string, s []float64) string {
	lo, hi := slices.Min(s), slices.Max(s)
	return fmt.Sprintf("%s: equity from %.4g to %.4g (low %.4g, high %.4g)", name, s[0], s[len(s)-1], lo, hi)
}

// seriesPath is the SVG path of s. It downsamples by a fixed stride, always
// keeping the last point, so the page stays small for long series and the
// output stays deterministic.
func seriesPath(s []float64, x func(int) float64, y func(float64) float64) string {
	var path strings.Builder
	stride := tickStride(len(s), equityMaxPoints)
	for i := 0; i < len(s); i += stride {
		writePathPoint(&path, i == 0, x(i), y(s[i]))
	}
	if (len(s)-1)%stride != 0 {
		writePathPoint(&path, false, x(len(s)-1), y(s[len(s)-1]))
	}
	return path.String()
}

// writePathPoint appends a move-to (first) or line-to point to an SVG path.
func writePathPoint(path *strings.Builder, first bool, x, y float64) {
	if first {
		path.WriteString("M")
	} else {
		path.WriteString(" L")
	}
	path.WriteString(svgNumber(x))
	path.WriteString(",")
	path.WriteString(svgNumber(y))
}
