//go:build darwin || freebsd || netbsd || openbsd

package offheap

// adviseHugePages does nothing on systems without Linux's madvise(MADV_HUGEPAGE).
func adviseHugePages([]byte) {}
