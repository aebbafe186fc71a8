//go:build !linux

package store

import "os"

// fdatasync is fsync where the system has no portable fdatasync.
func fdatasync(f *os.File) error { return f.Sync() }
