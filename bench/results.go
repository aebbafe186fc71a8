package main

import (
	"sort"
	"time"
)

// Repeat is the raw outcome of one measured window of one system and case.
type Repeat struct {
	// Ops is the number of ops completed in the window.
	Ops int64 `json:"ops"`
	// ElapsedNs is the window's wall time in nanoseconds.
	ElapsedNs int64 `json:"elapsed_ns"`
	// OpsPerSec is Ops divided by the elapsed time.
	OpsPerSec float64 `json:"ops_per_sec"`
	// P50Ns and P99Ns are latency quantiles in nanoseconds; both are 0 when
	// HasLatency is false.
	P50Ns int64 `json:"p50_ns"`
	P99Ns int64 `json:"p99_ns"`
	// HasLatency says whether the system timed single ops.
	HasLatency bool `json:"has_latency"`
	// CPUNs is the user+system CPU time of the whole process (clients,
	// servers and harness) during the window; 0 when HasCPU is false.
	CPUNs int64 `json:"cpu_ns"`
	// HasCPU says whether process CPU time could be read.
	HasCPU bool `json:"has_cpu"`
	// AllocBytes and Allocs are the heap bytes and objects the whole
	// process allocated during the window.
	AllocBytes uint64 `json:"alloc_bytes"`
	Allocs     uint64 `json:"allocs"`
}

// Summary holds the per-metric medians over a Result's repeats. Each metric
// is the median of that metric alone, so its fields may come from different
// repeats.
type Summary struct {
	OpsPerSec   float64 `json:"ops_per_sec"`
	P50Ns       float64 `json:"p50_ns"`
	P99Ns       float64 `json:"p99_ns"`
	HasLatency  bool    `json:"has_latency"`
	CPUNsPerOp  float64 `json:"cpu_ns_per_op"`
	HasCPU      bool    `json:"has_cpu"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
}

// Result is everything measured for one system at one case.
type Result struct {
	System string `json:"system"`
	// Unit names one op, e.g. "call" or "delivery".
	Unit string `json:"unit"`
	Case
	// Skipped is the reason the system did not run this case, if it did not.
	Skipped string `json:"skipped,omitempty"`
	// Error is the first error that stopped this system at this case; the
	// repeats completed before it are kept.
	Error string `json:"error,omitempty"`
	// Repeats are the raw measured windows, in run order.
	Repeats []Repeat `json:"repeats"`
	// Median summarizes Repeats; it is the zero Summary when no repeat
	// completed.
	Median Summary `json:"median"`
}

// ok reports whether r has a usable median.
func (r *Result) ok() bool { return r.Skipped == "" && r.Error == "" && len(r.Repeats) > 0 }

// summarize computes the per-metric medians of reps.
func summarize(reps []Repeat) Summary {
	var s Summary
	if len(reps) == 0 {
		return s
	}
	pick := func(f func(Repeat) float64) float64 {
		v := make([]float64, len(reps))
		for i, r := range reps {
			v[i] = f(r)
		}
		return median(v)
	}
	perOp := func(total float64, r Repeat) float64 {
		if r.Ops <= 0 {
			return 0
		}
		return total / float64(r.Ops)
	}
	s.OpsPerSec = pick(func(r Repeat) float64 { return r.OpsPerSec })
	s.HasLatency = true
	s.HasCPU = true
	for _, r := range reps {
		s.HasLatency = s.HasLatency && r.HasLatency
		s.HasCPU = s.HasCPU && r.HasCPU
	}
	if s.HasLatency {
		s.P50Ns = pick(func(r Repeat) float64 { return float64(r.P50Ns) })
		s.P99Ns = pick(func(r Repeat) float64 { return float64(r.P99Ns) })
	}
	if s.HasCPU {
		s.CPUNsPerOp = pick(func(r Repeat) float64 { return perOp(float64(r.CPUNs), r) })
	}
	s.BytesPerOp = pick(func(r Repeat) float64 { return perOp(float64(r.AllocBytes), r) })
	s.AllocsPerOp = pick(func(r Repeat) float64 { return perOp(float64(r.Allocs), r) })
	return s
}

// median returns the median of v (the mean of the two middle values for an
// even count), or 0 for an empty slice. It reorders v.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// newRepeat turns a Sample and the accounting around it into a Repeat.
func newRepeat(s Sample, cpu time.Duration, hasCPU bool, allocBytes, allocs uint64) Repeat {
	r := Repeat{
		Ops:        s.Ops,
		ElapsedNs:  int64(s.Elapsed),
		HasCPU:     hasCPU,
		AllocBytes: allocBytes,
		Allocs:     allocs,
	}
	if s.Elapsed > 0 {
		r.OpsPerSec = float64(s.Ops) / s.Elapsed.Seconds()
	}
	if s.Latency.Count() > 0 {
		r.HasLatency = true
		r.P50Ns = int64(s.Latency.Quantile(0.50))
		r.P99Ns = int64(s.Latency.Quantile(0.99))
	}
	if hasCPU {
		r.CPUNs = int64(cpu)
	}
	return r
}
