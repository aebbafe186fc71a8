package main

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The status page: server-rendered html/template, no scripts to build and no external
// assets. It refreshes itself (a meta refresh, or where scripts run a short inline one
// that waits while the lookup field is in use), reads at desktop widths and on a phone
// (wide tables scroll inside their box), and draws the throughput history as inline SVG.

//go:embed status.html.tmpl status_job.html.tmpl status_cluster.html.tmpl
var pageFiles embed.FS

var pageTemplates = template.Must(template.New("pages").Funcs(template.FuncMap{
	"duration": formatSeconds,
	"bytes":    formatBytes,
	"rate":     formatRate,
	"since": func(t *time.Time, now time.Time) string {
		if t == nil {
			return "–"
		}
		return formatSeconds(now.Sub(*t).Seconds()) + " ago"
	},
	"clock": func(t *time.Time) string {
		if t == nil {
			return "–"
		}
		return t.UTC().Format("15:04:05.000")
	},
	"shortHash": func(h string) string {
		if i := strings.IndexByte(h, ':'); i >= 0 && len(h) > i+13 {
			return h[:i+13] + "…"
		}
		return h
	},
	"joinLabels": func(m map[string]string) []string {
		out := make([]string, 0, len(m))
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		slices.Sort(out)
		return out
	},
}).ParseFS(pageFiles, "*.tmpl"))

// render executes template name into a buffer first, so that a failure is a clean 500.
func render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "rendering the status page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// pageView is what the status template reads: the /status document and what is
// derived from it for drawing.
type pageView struct {
	status
	Now     time.Time
	Refresh int // seconds; 0: no refresh
	Graph   graph
	// NotOK counts the jobs in the four recent lists, for the section headings.
	RecentSections []recentSection
}

// recentSection is one list of recently resolved jobs on the page.
type recentSection struct {
	ID, Title, Empty string
	Total            uint64 // since the master started
	Jobs             []jobStatus
}

func newPageView(doc status, refresh int) pageView {
	v := pageView{status: doc, Now: doc.TakenAt, Refresh: refresh, Graph: newGraph(doc.History, doc.TakenAt)}
	v.RecentSections = []recentSection{
		{ID: "failed", Title: "Failed", Empty: "No job has failed.", Total: doc.Failed, Jobs: doc.Recent.Failed},
		{ID: "lost", Title: "Lost (every attempt lost its worker)", Empty: "No job was lost.", Total: doc.Lost, Jobs: doc.Recent.Lost},
		{ID: "timed-out", Title: "Timed out", Empty: "No job timed out.", Total: doc.TimedOut, Jobs: doc.Recent.TimedOut},
		{ID: "cancelled", Title: "Cancelled (by their callers, or the master's shutdown)", Empty: "No job was cancelled.", Total: doc.Cancelled, Jobs: doc.Recent.Cancelled},
	}
	return v
}

// jobPageView is what the job lookup template reads.
type jobPageView struct {
	ID, Listen, Version string
	Job                 *jobStatus
	Problem             string
}

// graph is the throughput history drawn as SVG polylines in a graphWidth ×
// graphHeight box, time running left (graphSpan ago) to right (now).
type graph struct {
	Width, Height int
	OK, NotOK     string  // polyline points
	Peak          float64 // jobs per second at the top of the box
	Points        int     // samples drawn
	SpanLabel     string
}

const (
	graphWidth  = 600
	graphHeight = 120
	graphSpan   = 10 * time.Minute
)

func newGraph(h historyStatus, now time.Time) graph {
	g := graph{Width: graphWidth, Height: graphHeight, Points: len(h.Points), SpanLabel: formatSeconds(graphSpan.Seconds()) + " ago"}
	peak := 0.0
	for _, p := range h.Points {
		if p.Seconds > 0 {
			peak = max(peak, float64(p.OK)/p.Seconds, float64(p.NotOK)/p.Seconds)
		}
	}
	g.Peak = niceCeil(peak)
	var ok, bad strings.Builder
	for _, p := range h.Points {
		if p.Seconds <= 0 {
			continue
		}
		x := graphWidth - now.Sub(p.End).Seconds()/graphSpan.Seconds()*graphWidth
		if x < 0 {
			continue
		}
		y := func(n uint64) float64 {
			if g.Peak == 0 {
				return graphHeight
			}
			return graphHeight - float64(n)/p.Seconds/g.Peak*(graphHeight-4)
		}
		fmt.Fprintf(&ok, "%.1f,%.1f ", x, y(p.OK))
		fmt.Fprintf(&bad, "%.1f,%.1f ", x, y(p.NotOK))
	}
	g.OK, g.NotOK = strings.TrimSpace(ok.String()), strings.TrimSpace(bad.String())
	return g
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1), so that the
// graph's scale reads well and does not jump with every refresh.
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// formatSeconds reads a duration in seconds as a person would: 350ms, 4.2s, 3m20s, 5h2m.
func formatSeconds(secs float64) string {
	d := time.Duration(secs * float64(time.Second))
	switch {
	case d <= 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

// formatBytes reads a byte count in binary units.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// formatRate reads jobs per second with the precision that matters at its size.
func formatRate(r float64) string {
	switch {
	case r == 0:
		return "0"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strconv.FormatFloat(r, 'f', 0, 64)
}
