package store

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data and the metadata needed to read it (its size), not its
// times: all a log append needs, and one journal write less than fsync.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
