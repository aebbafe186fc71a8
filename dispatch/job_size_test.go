package dispatch

import (
	"testing"
	"unsafe"
)

// maxJobSize is the budget of the master's record of one job: the 352-byte size class.
// Every remote job allocates one, so each size class above it costs every job 32 bytes
// more (the job was 416 bytes, with four time.Time fields, until they became instants).
const maxJobSize = 352

func TestJobFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(job{}); n > maxJobSize {
		t.Errorf("a job is %d bytes, its budget is %d: keep new fields off the job, or make room", n, maxJobSize)
	}
}
