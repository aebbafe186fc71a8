package main

import (
	"fmt"
	"io"
	"strings"
)

// Report is one whole run: where it ran, what it ran and what came out. It
// is written as markdown to stdout and, with -json, as JSON.
type Report struct {
	Host     HostInfo     `json:"host"`
	Settings Settings     `json:"settings"`
	Systems  []SystemInfo `json:"systems"`
	Results  []Result     `json:"results"`
	// Interrupted is set when the run was stopped before the end.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Settings are the run's parameters.
type Settings struct {
	Callers  []int  `json:"callers"`
	Sizes    []int  `json:"sizes"`
	Warmup   string `json:"warmup"`
	Duration string `json:"duration"`
	Repeat   int    `json:"repeat"`
	Payload  string `json:"payload"` // "pattern" or "random"
}

// SystemInfo describes one system that was selected for the run.
type SystemInfo struct {
	Name  string `json:"name"`
	Unit  string `json:"unit"`
	About string `json:"about"`
}

// newReport assembles a Report from a finished (or interrupted) run.
func newReport(host HostInfo, cfg Config, results []Result) Report {
	r := Report{
		Host: host,
		Settings: Settings{
			Callers:  cfg.Callers,
			Sizes:    cfg.Sizes,
			Warmup:   cfg.Warmup.String(),
			Duration: cfg.Duration.String(),
			Repeat:   cfg.Repeat,
			Payload:  map[bool]string{false: "pattern", true: "random"}[cfg.RandomPayload],
		},
		Results: results,
	}
	for _, e := range cfg.Systems {
		r.Systems = append(r.Systems, SystemInfo{Name: e.Name, Unit: e.unit(), About: e.About})
	}
	return r
}

// writeMarkdown writes the header, the results table, notes on skipped and
// failed cases, the system legend and the ratios section.
func writeMarkdown(w io.Writer, r Report) {
	h := r.Host
	fmt.Fprintf(w, "# banfleet peer benchmark\n\n")
	fmt.Fprintf(w, "- date: %s\n", h.Date)
	fmt.Fprintf(w, "- go: %s %s/%s\n", h.GoVersion, h.GOOS, h.GOARCH)
	fmt.Fprintf(w, "- GOMAXPROCS: %d (NumCPU %d)\n", h.GOMAXPROCS, h.NumCPU)
	fmt.Fprintf(w, "- CPU: %s\n", h.CPUModel)
	fmt.Fprintf(w, "- each repeat: fresh system, %s warm-up, %s measured; %d repeats per case, median shown\n",
		r.Settings.Warmup, r.Settings.Duration, r.Settings.Repeat)
	fmt.Fprintf(w, "- payloads: %s\n", r.Settings.Payload)
	fmt.Fprintf(w, "- CPU and allocations are of the whole process (clients, servers, broker, harness) divided by ops; CPU also counts a system's own server processes (asynq-redis's redis-server)\n")
	if r.Interrupted {
		fmt.Fprintf(w, "- **interrupted**: the results below are incomplete\n")
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "| system | callers | size | ops/s | p50 | p99 | CPU µs/op | B/op | allocs/op |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	var skipped, failed []string
	for _, res := range r.Results {
		switch {
		case res.Skipped != "":
			skipped = append(skipped, fmt.Sprintf("%s at callers=%d size=%s: %s",
				res.System, res.Callers, fmtSize(res.Size), res.Skipped))
			continue
		case res.Error != "":
			failed = append(failed, fmt.Sprintf("%s at callers=%d size=%s (after %d good repeats): %s",
				res.System, res.Callers, fmtSize(res.Size), len(res.Repeats), res.Error))
			fmt.Fprintf(w, "| %s | %d | %s | FAILED | | | | | |\n", res.System, res.Callers, fmtSize(res.Size))
			continue
		}
		m := res.Median
		cpu := "n/a"
		if m.HasCPU {
			cpu = fmt.Sprintf("%.2f", m.CPUNsPerOp/1e3)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %.0f | %.1f |\n",
			res.System, res.Callers, fmtSize(res.Size), fmtRate(m.OpsPerSec),
			fmtLatency(m.P50Ns, m.HasLatency), fmtLatency(m.P99Ns, m.HasLatency),
			cpu, m.BytesPerOp, m.AllocsPerOp)
	}
	fmt.Fprintln(w)
	writeList(w, "Skipped", skipped)
	writeList(w, "Failed", failed)

	fmt.Fprintln(w, "Systems (one op is one call unless said otherwise):")
	fmt.Fprintln(w)
	for _, s := range r.Systems {
		unit := ""
		if s.Unit != "call" {
			unit = fmt.Sprintf(" (one op = one %s)", s.Unit)
		}
		fmt.Fprintf(w, "- `%s`%s: %s\n", s.Name, unit, s.About)
	}
	fmt.Fprintln(w)
	writeRatios(w, r.Results)
}

// writeList writes a titled bullet list, or nothing when items is empty.
func writeList(w io.Writer, title string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(w, "%s:\n\n", title)
	for _, it := range items {
		fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(it, "\n", " "))
	}
	fmt.Fprintln(w)
}

// fmtSize formats a payload size as "64 B" or "64 KiB".
func fmtSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// fmtRate formats ops per second with thousands separators.
func fmtRate(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtLatency formats nanoseconds as µs or ms, or "n/a" when missing.
func fmtLatency(ns float64, ok bool) string {
	switch {
	case !ok:
		return "n/a"
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	default:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
}
