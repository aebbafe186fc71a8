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

// peerPairs are system pairs A / B, each a banfleet system and the peer
// that does the same job (or the same system with a feature off: the cost
// of metrics; or the cluster and its raft floor, and that floor against the
// in-memory master: the cluster target's bound), compared directly in every case in which both ran (a pair
// with a system absent from the run, or failed in that case, is left out).
var peerPairs = [][2]string{
	{"dispatch-w4", "asynq-redis"},
	{"dispatch-durable-w4", "asynq-redis"},
	{"dispatch-w4-metrics", "dispatch-w4"},
	{"dispatch-cluster-w4-early", "raft-floor-batched"},
	{"dispatch-cluster-w4-early", "raft-floor-batched-early"},
	{"dispatch-cluster-w4", "raft-floor-batched-2"},
	{"raft-floor-batched", "dispatch-w4"},
	{"raft-floor-batched-early", "dispatch-w4"},
	{"raft-floor-batched-2", "dispatch-w4"},
}

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
		"with many callers it includes queueing). A pair `A / B` divides A's ops/s, p50 and CPU per op by B's "+
		"(ops/s above 1, p50 and CPU below 1: A does better). Compare ratios within one run only.\n\n", latencyBaseline, latencyBaseline)

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
	pairs := casePairs(c, byKey)
	if len(bases) == 0 && lat == nil && len(pairs) == 0 {
		return
	}

	fmt.Fprintf(w, "### callers=%d, size=%s\n\n", c.Callers, fmtSize(c.Size))
	if len(bases) > 0 || lat != nil {
		writeBaselineTable(w, rows, bases, lat)
	}
	if len(pairs) > 0 {
		writePairTable(w, pairs)
	}
}

// writeBaselineTable writes every row's ops/s against each baseline and its
// p50 against the latency baseline (nil when absent).
func writeBaselineTable(w io.Writer, rows, bases []*Result, lat *Result) {
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

// casePairs returns the peerPairs of which both systems have a usable
// result of the same unit in case c, as [A, B].
func casePairs(c Case, byKey map[string]*Result) [][2]*Result {
	var out [][2]*Result
	for _, p := range peerPairs {
		a, b := byKey[resultKey(p[0], c)], byKey[resultKey(p[1], c)]
		if a == nil || b == nil || !a.ok() || !b.ok() || a.Unit != b.Unit || b.Median.OpsPerSec <= 0 {
			continue
		}
		out = append(out, [2]*Result{a, b})
	}
	return out
}

// writePairTable writes A's ops/s, p50 and CPU per op divided by B's for
// every pair; a cell is a dash when either side lacks the metric.
func writePairTable(w io.Writer, pairs [][2]*Result) {
	fmt.Fprintln(w, "| A / B | ops/s A | ops/s B | ops/s A÷B | p50 A÷B | CPU/op A÷B |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
	for _, p := range pairs {
		a, b := p[0].Median, p[1].Median
		p50, cpu := "–", "–"
		if a.HasLatency && b.HasLatency && b.P50Ns > 0 {
			p50 = fmt.Sprintf("%.3f", a.P50Ns/b.P50Ns)
		}
		if a.HasCPU && b.HasCPU && b.CPUNsPerOp > 0 {
			cpu = fmt.Sprintf("%.3f", a.CPUNsPerOp/b.CPUNsPerOp)
		}
		fmt.Fprintf(w, "| %s / %s | %s | %s | %.2f | %s | %s |\n", p[0].System, p[1].System,
			fmtRate(a.OpsPerSec), fmtRate(b.OpsPerSec), a.OpsPerSec/b.OpsPerSec, p50, cpu)
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
