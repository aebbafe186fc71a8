package main

import (
	"os"
	"testing"
	"time"
)

// TestPidCPU reads this process's own CPU time from /proc and compares it
// with getrusage's, within /proc's 10 ms resolution.
func TestPidCPU(t *testing.T) {
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	got, ok := pidCPU(os.Getpid())
	want, wantOK := processCPU()
	if !ok || !wantOK {
		t.Fatalf("pidCPU ok=%v, processCPU ok=%v", ok, wantOK)
	}
	if got <= 0 || got > want+20*time.Millisecond || got < want-20*time.Millisecond {
		t.Fatalf("pidCPU = %v, getrusage = %v", got, want)
	}
	if _, ok := pidCPU(-1); ok {
		t.Fatal("pidCPU(-1) succeeded")
	}
}
