package main

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data (not its metadata) to the disk.
func fdatasync(f *os.File) error {
	for {
		if err := syscall.Fdatasync(int(f.Fd())); err != syscall.EINTR {
			return err
		}
	}
}
