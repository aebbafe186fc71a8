package main

import (
	"fmt"
	"io"
	"strings"
)

// throughputBaselines are the systems every other system's ops/s is
// divided by, in column order. A baseline that did not run (or failed) in a
// case is left out of that case's table; so is one whose unit differs.
var throughputBaselines = []string{"grpc", "nats-w1", "nats-w4", "rawtcp-mux"}

// latencyBaseline is the system whose p50, at one caller and the same
// size, every other system's p50 is divided by: the loopback floor.
const latencyBaseline = "rawtcp-pingpong"

// writeRatios writes, for every case that has results, each system's
// throughput divided by every baseline's that ran in that case (above 1 is
// faster than the baseline), and its p50 divided by the latency baseline's
// one-caller p50 at the same size (above 1 is slower than the floor).
func writeRatios(w io.Writer, results []Result) {
	fmt.Fprintln(w, "## Ratios")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "`×B` is ops/s divided by system B's ops/s in the same case (above 1: more throughput than B). "+
		"`p50÷%s` is p50 divided by %s's p50 with 1 caller at the same size (above 1: slower than the loopback floor; "+
		"with many callers it includes queueing). Compare ratios within one run only.\n\n", latencyBaseline, latencyBaseline)

	byKey := map[string]*Result{}
	var cases []Case
	seen := map[Case]bool{}
	for i := range results {
		r := &results[i]
		byKey[resultKey(r.System, r.Case)] = r
		if !seen[r.Case] {
			seen[r.Case] = true
			cases = append(cases, r.Case)
		}
	}
	for _, c := range cases {
		writeCaseRatios(w, c, results, byKey)
	}
}

// resultKey indexes a result by system and case.
func resultKey(system string, c Case) string {
	return fmt.Sprintf("%s/%d/%d", system, c.Callers, c.Size)
}

// writeCaseRatios writes the ratio table of one case, if any system has a
// usable result in it.
func writeCaseRatios(w io.Writer, c Case, results []Result, byKey map[string]*Result) {
	var rows []*Result
	for i := range results {
		if r := &results[i]; r.Case == c && r.ok() {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	var bases []*Result
	for _, name := range throughputBaselines {
		if b := byKey[resultKey(name, c)]; b != nil && b.ok() && b.Median.OpsPerSec > 0 {
			bases = append(bases, b)
		}
	}
	lat := byKey[resultKey(latencyBaseline, Case{Callers: 1, Size: c.Size})]
	if lat != nil && (!lat.ok() || !lat.Median.HasLatency || lat.Median.P50Ns <= 0) {
		lat = nil
	}
	if len(bases) == 0 && lat == nil {
		return
	}

	fmt.Fprintf(w, "### callers=%d, size=%s\n\n", c.Callers, fmtSize(c.Size))
	head := []string{"system", "ops/s"}
	align := []string{"---", "--:"}
	for _, b := range bases {
		head = append(head, "×"+b.System)
		align = append(align, "--:")
	}
	if lat != nil {
		head = append(head, "p50÷"+lat.System)
		align = append(align, "--:")
	}
	fmt.Fprintf(w, "| %s |\n|%s|\n", strings.Join(head, " | "), strings.Join(align, "|"))
	for _, r := range rows {
		cells := []string{r.System, fmtRate(r.Median.OpsPerSec)}
		for _, b := range bases {
			cells = append(cells, ratioCell(r, b, r.Median.OpsPerSec, b.Median.OpsPerSec))
		}
		if lat != nil {
			cell := "–"
			if r.Median.HasLatency && r.Unit == lat.Unit {
				cell = fmt.Sprintf("%.2f", r.Median.P50Ns/lat.Median.P50Ns)
			}
			cells = append(cells, cell)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}

// ratioCell formats a/b for r against baseline b, or a dash when the units
// differ.
func ratioCell(r, b *Result, a, base float64) string {
	if r.Unit != b.Unit {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/base)
}
