//go:build unix

package main

import (
	"syscall"
	"time"
)

// processCPU returns the user plus system CPU time this process has used so
// far, on all threads, and whether it could be read.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
