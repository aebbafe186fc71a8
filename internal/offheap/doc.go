// Package offheap maps memory the Go garbage collector does not manage.
//
// What a process keeps for long, in bulk and without pointers (the master's retained
// job results) costs more on the collected heap than its size: the runtime lets the
// heap grow to about twice what is live before it collects (GOGC=100), so a quarter of
// a GiB kept there lets another quarter of garbage pile up between collections, and
// every short-lived buffer of the hot path then lands on memory no cache has seen.
// Memory mapped here is not counted by the collector: the heap stays small and its
// buffers are reused while they are still in cache.
//
// Memory returned by Map must be given back with Unmap exactly once, and no slice of
// it may be used afterwards: the pages are gone and a read faults. Owners therefore
// copy out of it before they let go of their lock, and never hand a slice of it to
// anyone.
package offheap
