//go:build race

package store

// raceEnabled: the race detector slows the state machine about tenfold.
const raceEnabled = true
