//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package offheap

import "fmt"

// OffHeap is true where Map's memory is outside the collected heap: not here.
const OffHeap = false

// Map returns n bytes of zeroed memory. On this system it is an ordinary allocation on
// the collected heap: correct, without the benefit the package exists for.
func Map(n int) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("offheap: cannot map %d bytes", n)
	}
	return make([]byte, n), nil
}

// Unmap lets the collector have memory from Map.
func Unmap([]byte) error { return nil }
