//go:build !unix

package main

import "time"

// processCPU reports that process CPU time cannot be read on this platform;
// the report then shows CPU per op as missing.
func processCPU() (time.Duration, bool) { return 0, false }
