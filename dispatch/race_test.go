//go:build race

package dispatch_test

// raceEnabled: the test binary runs under the race detector, whose bookkeeping
// allocates, so allocation counts mean nothing.
const raceEnabled = true
