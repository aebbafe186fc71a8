//go:build race

package main

// raceEnabled: the test binary runs under the race detector, so the daemons the
// end-to-end test builds do too.
const raceEnabled = true
