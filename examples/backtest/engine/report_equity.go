package engine

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Equity chart geometry in SVG user units.
const (
	equityWidth        = 860.0
	equityHeight       = 320.0
	equityMarginLeft   = 64.0
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
	Path          string // SVG path data of the curve
	BaselineY     string // y of equity 1.0; empty when out of range
	XTicks        []svgTick
	YTicks        []svgTick
	Tooltip       string
}

// buildEquityChart lays out the equity curve; it returns nil when there
// is no curve to draw. Bars supply dates for the x axis when they match
// the curve in length; otherwise the axis shows bar numbers.
func buildEquityChart(equity []float64, bars []Bar) *equityView {
	if len(equity) == 0 {
		return nil
	}
	lo, hi := equity[0], equity[0]
	for _, e := range equity {
		lo, hi = math.Min(lo, e), math.Max(hi, e)
	}
	pad := float64((hi - lo) * 0.05)
	if pad == 0 {
		pad = math.Max(math.Abs(hi)*0.01, 0.01)
	}
	lo, hi = lo-pad, hi+pad

	plotW := equityWidth - equityMarginLeft - equityMarginRight
	plotH := equityHeight - equityMarginTop - equityMarginBottom
	last := max(len(equity)-1, 1)
	x := func(i int) float64 { return equityMarginLeft + plotW*float64(i)/float64(last) }
	y := func(e float64) float64 { return equityMarginTop + plotH*(hi-e)/(hi-lo) }

	v := &equityView{
		Width: svgNumber(equityWidth), Height: svgNumber(equityHeight),
		PlotX: svgNumber(equityMarginLeft), PlotY: svgNumber(equityMarginTop),
		PlotW: svgNumber(plotW), PlotH: svgNumber(plotH),
		PlotRight: svgNumber(equityMarginLeft + plotW),
		Tooltip: fmt.Sprintf("equity from %.4f to %.4f (low %.4f, high %.4f)",
			equity[0], equity[len(equity)-1], lo+pad, hi-pad),
	}

	// Downsample by a fixed stride, always keeping the last point, so the
	// page stays small for long series and the output stays deterministic.
	var path strings.Builder
	stride := tickStride(len(equity), equityMaxPoints)
	for i := 0; i < len(equity); i += stride {
		writePathPoint(&path, i == 0, x(i), y(equity[i]))
	}
	if (len(equity)-1)%stride != 0 {
		writePathPoint(&path, false, x(len(equity)-1), y(equity[len(equity)-1]))
	}
	v.Path = path.String()

	if lo <= 1 && 1 <= hi {
		v.BaselineY = svgNumber(y(1))
	}
	for k := range equityYTicks {
		value := lo + float64((hi-lo)*float64(k)/float64(equityYTicks-1))
		v.YTicks = append(v.YTicks, svgTick{X: svgNumber(equityMarginLeft - 6), Y: svgNumber(y(value) + 4), Label: fmt.Sprintf("%.3f", value)})
	}
	for k := range equityXTicks {
		i := last * k / (equityXTicks - 1)
		i = min(i, len(equity)-1)
		label := fmt.Sprintf("bar %d", i)
		if len(bars) == len(equity) {
			label = time.Unix(bars[i].Time, 0).UTC().Format("2006-01-02")
		}
		v.XTicks = append(v.XTicks, svgTick{X: svgNumber(x(i)), Y: svgNumber(equityMarginTop + plotH + 18), Label: label})
	}
	return v
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
