package engine

import (
	"fmt"
	"math"
	"slices"
)

// Heat map geometry in SVG user units.
const (
	heatCellWidth    = 12.0
	heatCellHeight   = 14.0
	heatMarginLeft   = 56.0
	heatMarginTop    = 30.0
	heatMarginBottom = 46.0
	heatLegendWidth  = 16.0
	heatLegendGap    = 24.0
	heatMarginRight  = 130.0 // the legend and its "+1.23 median" labels
	heatMaxTicks     = 15
)

// heatmapView is everything the template needs to draw one heat map of
// Sharpe over the (fast, slow) grid for one moving-average kind.
type heatmapView struct {
	Kind             string
	GradientID       string
	Width, Height    string
	PlotX, PlotY     string
	PlotW, PlotH     string
	Cells            []heatCell
	XTicks, YTicks   []svgTick
	XLabel, YLabel   svgTick
	LegendX, LegendY string
	LegendW, LegendH string
	LegendStops      []gradientStop
	LegendTicks      []svgTick
	Best             *heatCell // the best parameter set's cell, outlined; nil if in another kind
}

// heatCell is one coloured rectangle with its tooltip.
type heatCell struct {
	X, Y, W, H string
	Fill       string
	Tooltip    string
}

// gradientStop is one <stop> of the legend's linearGradient.
type gradientStop struct {
	Offset string
	Color  string
}

// sharpeScale maps a Sharpe ratio to a position on the colour scale,
// centred on what the sweep found: the lowest Sharpe is the red end, the
// median the neutral middle and the highest the blue end, linearly between.
// A scale fixed at ±max|Sharpe| around zero left most maps one pale colour
// when the results sat in a narrow band (all between 0.4 and 0.9, say).
type sharpeScale struct {
	min, median, max float64
}

// newSharpeScale is the scale of rs's Sharpe ratios.
func newSharpeScale(rs []Result) sharpeScale {
	if len(rs) == 0 {
		return sharpeScale{}
	}
	values := make([]float64, len(rs))
	for i, r := range rs {
		values[i] = r.Sharpe
	}
	slices.Sort(values)
	n := len(values)
	median := values[n/2]
	if n%2 == 0 {
		median = values[n/2-1] + (values[n/2]-values[n/2-1])/2
	}
	return sharpeScale{min: values[0], median: median, max: values[n-1]}
}

// position is v's place on the colour scale, 0 (red) to 1 (blue).
func (s sharpeScale) position(v float64) float64 {
	switch {
	case v < s.median && s.median > s.min:
		return 0.5 * (v - s.min) / (s.median - s.min)
	case v > s.median && s.max > s.median:
		return 0.5 + 0.5*(v-s.median)/(s.max-s.median)
	default:
		return 0.5
	}
}

// buildHeatmaps returns one heat map per kind present in rs, in kind
// order. When several results share (kind, fast, slow), e.g. because of
// different costs, the best ranked one is shown. The best result of all is
// outlined in its kind's map.
func buildHeatmaps(rs []Result) []heatmapView {
	byKind := map[string][]Result{}
	for _, r := range rs {
		byKind[r.Params.Kind] = append(byKind[r.Params.Kind], r)
	}
	kinds := make([]string, 0, len(byKind))
	for kind := range byKind {
		kinds = append(kinds, kind)
	}
	slices.Sort(kinds)

	// One colour scale for all kinds, so the maps can be compared.
	scale := newSharpeScale(rs)
	var best Params
	if top := TopN(rs, 1); len(top) == 1 {
		best = top[0].Params
	}

	views := make([]heatmapView, 0, len(kinds))
	for i, kind := range kinds {
		views = append(views, buildHeatmap(kind, fmt.Sprintf("sharpe-scale-%d", i), byKind[kind], scale, best))
	}
	return views
}

// buildHeatmap lays out the heat map of one kind on scale, outlining best's
// cell if it is of this kind.
func buildHeatmap(kind, gradientID string, rs []Result, scale sharpeScale, bestParams Params) heatmapView {
	type cellKey struct{ fast, slow int }
	best := map[cellKey]Result{}
	var fasts, slows []int
	for _, r := range rs {
		key := cellKey{r.Params.Fast, r.Params.Slow}
		if current, ok := best[key]; !ok || compareResults(r, current) < 0 {
			best[key] = r
		}
		fasts = append(fasts, r.Params.Fast)
		slows = append(slows, r.Params.Slow)
	}
	slices.Sort(fasts)
	fasts = slices.Compact(fasts)
	slices.Sort(slows)
	slows = slices.Compact(slows)

	plotW := float64(heatCellWidth * float64(len(fasts)))
	plotH := float64(heatCellHeight * float64(len(slows)))
	v := heatmapView{
		Kind:       kind,
		GradientID: gradientID,
		Width:      svgNumber(heatMarginLeft + plotW + heatMarginRight),
		Height:     svgNumber(heatMarginTop + plotH + heatMarginBottom),
		PlotX:      svgNumber(heatMarginLeft),
		PlotY:      svgNumber(heatMarginTop),
		PlotW:      svgNumber(plotW),
		PlotH:      svgNumber(plotH),
	}
	// Slow periods grow upwards, fast periods to the right.
	cellX := func(col int) float64 { return heatMarginLeft + float64(heatCellWidth*float64(col)) }
	cellY := func(row int) float64 { return heatMarginTop + plotH - float64(heatCellHeight*float64(row+1)) }

	for row, slow := range slows {
		for col, fast := range fasts {
			r, ok := best[cellKey{fast, slow}]
			if !ok {
				continue // invalid (fast ≥ slow) or not run: background shows
			}
			cell := heatCell{
				X: svgNumber(cellX(col)), Y: svgNumber(cellY(row)),
				W: svgNumber(heatCellWidth), H: svgNumber(heatCellHeight),
				Fill: scaleColor(scale.position(r.Sharpe)),
				Tooltip: fmt.Sprintf("%s fast %d slow %d: Sharpe %.3f, return %s, max drawdown %s, %d trades",
					kind, fast, slow, r.Sharpe, formatPercent(r.TotalReturn), formatPercent(r.MaxDrawdown), r.Trades),
			}
			v.Cells = append(v.Cells, cell)
			if r.Params == bestParams {
				cell.Tooltip = "best: " + cell.Tooltip
				v.Best = &cell
			}
		}
	}
	for col := 0; col < len(fasts); col += tickStride(len(fasts), heatMaxTicks) {
		v.XTicks = append(v.XTicks, svgTick{
			X: svgNumber(cellX(col) + heatCellWidth/2), Y: svgNumber(heatMarginTop + plotH + 14),
			Label: fmt.Sprint(fasts[col]),
		})
	}
	for row := 0; row < len(slows); row += tickStride(len(slows), heatMaxTicks) {
		v.YTicks = append(v.YTicks, svgTick{
			X: svgNumber(heatMarginLeft - 6), Y: svgNumber(cellY(row) + heatCellHeight/2 + 4),
			Label: fmt.Sprint(slows[row]),
		})
	}
	v.XLabel = svgTick{X: svgNumber(heatMarginLeft + float64(plotW/2)), Y: svgNumber(heatMarginTop + plotH + 36), Label: "fast period (bars)"}
	v.YLabel = svgTick{X: svgNumber(16), Y: svgNumber(heatMarginTop + float64(plotH/2)), Label: "slow period (bars)"}
	addLegend(&v, heatMarginLeft+plotW+heatLegendGap, plotH, scale)
	return v
}

// heatLegendMinGap is the least vertical distance between two legend labels.
const heatLegendMinGap = 12.0

// addLegend places a vertical colour bar at x labelled with the scale's
// highest, median and lowest Sharpe, and zero where it lies between them
// clear of the others; high values sit at the top like the slow axis.
func addLegend(v *heatmapView, x, plotH float64, scale sharpeScale) {
	v.LegendX, v.LegendY = svgNumber(x), svgNumber(heatMarginTop)
	v.LegendW, v.LegendH = svgNumber(heatLegendWidth), svgNumber(plotH)
	for i := len(divergingScale) - 1; i >= 0; i-- { // offsets must increase
		stop := divergingScale[i]
		v.LegendStops = append(v.LegendStops, gradientStop{
			Offset: svgNumber(100*(1-stop.Offset)) + "%", // gradient runs top to bottom
			Color:  scaleColor(stop.Offset),
		})
	}
	type mark struct {
		value float64
		label string
	}
	marks := []mark{
		{scale.max, fmt.Sprintf("%+.2f max", scale.max)},
		{scale.median, fmt.Sprintf("%+.2f median", scale.median)},
		{scale.min, fmt.Sprintf("%+.2f min", scale.min)},
	}
	if scale.min < 0 && 0 < scale.max {
		marks = append(marks, mark{0, "0"})
	}
	var placed []float64
	for _, m := range marks {
		y := heatMarginTop + float64(plotH*(1-scale.position(m.value)))
		if slices.ContainsFunc(placed, func(p float64) bool { return math.Abs(p-y) < heatLegendMinGap }) {
			continue // would overprint a label already placed
		}
		placed = append(placed, y)
		v.LegendTicks = append(v.LegendTicks, svgTick{
			X: svgNumber(x + heatLegendWidth + 4), Y: svgNumber(y + 4),
			Label: m.label,
		})
	}
}
