//go:build !linux

package main

import (
	"os/exec"
	"time"
)

// pidCPU reports that another process's CPU time cannot be read on this
// platform; the report then shows CPU per op as missing for the systems
// that run one.
func pidCPU(int) (time.Duration, bool) { return 0, false }

// dieWithParent does nothing on this platform: Close still stops the
// process, but a killed harness may leave it running.
func dieWithParent(*exec.Cmd) {}
