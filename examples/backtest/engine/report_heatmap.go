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
	heatMarginRight  = 100.0
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

// buildHeatmaps returns one heat map per kind present in rs, in kind
// order. When several results share (kind, fast, slow), e.g. because of
// different costs, the best ranked one is shown.
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
	bound := 0.0
	for _, r := range rs {
		bound = math.Max(bound, math.Abs(r.Sharpe))
	}
	if bound == 0 {
		bound = 1
	}

	views := make([]heatmapView, 0, len(kinds))
	for i, kind := range kinds {
		views = append(views, buildHeatmap(kind, fmt.Sprintf("sharpe-scale-%d", i), byKind[kind], bound))
	}
	return views
}

// buildHeatmap lays out the heat map of one kind; bound is the |Sharpe|
// mapped to the ends of the colour scale.
func buildHeatmap(kind, gradientID string, rs []Result, bound float64) heatmapView {
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
			v.Cells = append(v.Cells, heatCell{
				X: svgNumber(cellX(col)), Y: svgNumber(cellY(row)),
				W: svgNumber(heatCellWidth), H: svgNumber(heatCellHeight),
				Fill: scaleColor((r.Sharpe + bound) / (2 * bound)),
				Tooltip: fmt.Sprintf("%s fast %d slow %d: Sharpe %.3f, return %s, max drawdown %s, %d trades",
					kind, fast, slow, r.Sharpe, formatPercent(r.TotalReturn), formatPercent(r.MaxDrawdown), r.Trades),
			})
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
	addLegend(&v, heatMarginLeft+plotW+heatLegendGap, plotH, bound)
	return v
}

// addLegend places a vertical colour bar at x with labels for -bound, 0
// and +bound; high values sit at the top like the slow axis.
func addLegend(v *heatmapView, x, plotH, bound float64) {
	v.LegendX, v.LegendY = svgNumber(x), svgNumber(heatMarginTop)
	v.LegendW, v.LegendH = svgNumber(heatLegendWidth), svgNumber(plotH)
	for i := len(divergingScale) - 1; i >= 0; i-- { // offsets must increase
		stop := divergingScale[i]
		v.LegendStops = append(v.LegendStops, gradientStop{
			Offset: svgNumber(100*(1-stop.Offset)) + "%", // gradient runs top to bottom
			Color:  scaleColor(stop.Offset),
		})
	}
	for _, value := range [...]float64{bound, 0, -bound} {
		y := heatMarginTop + plotH*(bound-value)/(2*bound)
		v.LegendTicks = append(v.LegendTicks, svgTick{
			X: svgNumber(x + heatLegendWidth + 4), Y: svgNumber(y + 4),
			Label: fmt.Sprintf("%+.2f", value),
		})
	}
}
