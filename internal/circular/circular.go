// Package circular holds what the FIFO rings of several packages share: the master's
// retained outcomes (dispatch) and a worker's remembered replies (worker) are each a
// slice used as a circular buffer that grows by doubling.
package circular

// Grown returns the n elements of the circular buffer buf that start at head, in
// order from index 0 of a new buffer twice as long (at least minLen, at most maxLen).
func Grown[T any](buf []T, head, n, minLen, maxLen int) []T {
	size := min(max(2*len(buf), minLen), maxLen)
	grown := make([]T, size)
	for i := range n {
		grown[i] = buf[(head+i)%len(buf)]
	}
	return grown
}
