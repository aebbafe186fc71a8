//go:build !linux

package main

import "os"

// fdatasync flushes f to the disk (with its metadata: no fdatasync here).
func fdatasync(f *os.File) error { return f.Sync() }
