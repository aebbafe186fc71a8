//go:build race

package main

// raceEnabled builds the daemons of process tests with -race too.
const raceEnabled = true
