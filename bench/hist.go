package main

import (
	"math/bits"
	"time"
)

// histSubBits sets the histogram's precision: every power-of-two range of
// latencies is split into 2^histSubBits equal buckets, so a reported
// quantile is within 1/2^histSubBits (about 3%) of the true value.
const histSubBits = 5

const (
	histSub     = 1 << histSubBits                   // buckets per power of two
	histExact   = 2 * histSub                        // values below this get one bucket each
	histBuckets = (64-histSubBits)*histSub + histSub // covers every uint64
)

// Histogram is a fixed-size log-linear latency histogram with about 3%
// relative precision. Recording is a few arithmetic instructions and no
// allocation or lock; give every recording goroutine its own Histogram and
// Merge them afterwards. The zero value is empty and ready to use.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    uint64
}

// histIndex returns the bucket of v nanoseconds.
func histIndex(v uint64) int {
	if v < histExact {
		return int(v)
	}
	shift := bits.Len64(v) - (histSubBits + 1)
	return shift*histSub + int(v>>uint(shift))
}

// histValue returns a representative value (the middle) of bucket i.
func histValue(i int) uint64 {
	if i < histExact {
		return uint64(i)
	}
	shift := uint(i/histSub - 1)
	m := uint64(i%histSub + histSub)
	lo := m << shift
	return lo + (uint64(1)<<shift)/2
}

// Record adds one latency. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[histIndex(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

// Merge adds every latency recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// Count returns the number of recorded latencies.
func (h *Histogram) Count() uint64 {
	if h == nil {
		return 0
	}
	return h.n
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Quantile returns the latency at quantile q (0 < q <= 1), for example 0.5
// for the median or 0.99, within the histogram's precision and never above
// the largest recorded value. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h == nil || h.n == 0 {
		return 0
	}
	if q <= 0 {
		q = 0
	}
	if q > 1 {
		q = 1
	}
	rank := uint64(q*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := histValue(i)
			if v > h.max {
				v = h.max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
