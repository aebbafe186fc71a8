package offheap

import "syscall"

// adviseHugePages asks Linux to back b with transparent huge pages where the system's
// policy leaves that to the program (/sys/kernel/mm/transparent_hugepage/enabled set
// to "madvise", a common default). Why: memory is committed a page at a time as it is
// first touched, and each fault costs far more than filling the page. On the
// virtualised machine of docs/benchmarks.md, first writes of 64 KiB into 4 KiB pages
// took 201 µs, into huge pages 5.4 µs, and 2.7 µs once touched: so a fresh master's
// retained-outcome ring (256 MiB by default) cost about 0.8 s of CPU over its first
// 4,096 results of 64 KiB, and costs a fortieth of that with the advice. An error
// (a kernel without the feature) leaves ordinary pages, which are correct.
func adviseHugePages(b []byte) {
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
}
