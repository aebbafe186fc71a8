//go:build linux || darwin || freebsd || netbsd || openbsd

package offheap

import (
	"fmt"
	"syscall"
)

// OffHeap is true where Map's memory is outside the collected heap.
const OffHeap = true

// Map returns n bytes of zeroed memory outside the collected heap. The pages are
// reserved, not committed: memory is used only as it is touched. Where the system
// allows, they are asked for in huge pages (adviseHugePages).
func Map(n int) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("offheap: cannot map %d bytes", n)
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("offheap: mapping %d bytes: %w", n, err)
	}
	adviseHugePages(b)
	return b, nil
}

// Unmap gives memory from Map back to the system.
func Unmap(b []byte) error {
	if b == nil {
		return nil
	}
	if err := syscall.Munmap(b); err != nil {
		return fmt.Errorf("offheap: unmapping %d bytes: %w", len(b), err)
	}
	return nil
}
