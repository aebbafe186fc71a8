package dispatch

import "time"

// Test hooks into the status bookkeeping (insight.go): the sampler's timer stopped, and
// samples taken at times of the test's choosing, so that history and rates are
// asserted exactly.

// StopSampler stops the master's sampling timer.
func StopSampler(m *Master) { m.stopInsight() }

// SampleAt takes one sample as of now.
func SampleAt(m *Master, now time.Time) { m.sampleAt(now) }
