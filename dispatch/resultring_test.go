package dispatch

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// TestResultRingFIFO writes results of random sizes into a small ring, freeing the
// oldest whenever the next does not fit, and checks every live result still reads back
// as written: a wrap that overwrote live bytes, or a free that lost its place, shows up
// as a result that changed.
func TestResultRingFIFO(t *testing.T) {
	r := resultRing{size: 1000}
	defer r.release()
	rng := rand.New(rand.NewPCG(1, 2))
	type live struct {
		sp   ringSpan
		want []byte
	}
	var fifo []live
	for i := range 20_000 {
		b := make([]byte, rng.IntN(300))
		for k := range b {
			b[k] = byte(i + k)
		}
		for !r.fits(len(b)) {
			if len(fifo) == 0 {
				t.Fatalf("put %d: %d bytes do not fit an empty ring of %d", i, len(b), r.size)
			}
			r.free(fifo[0].sp)
			fifo = fifo[1:]
		}
		sp, err := r.put(b)
		if err != nil {
			t.Fatal(err)
		}
		fifo = append(fifo, live{sp, b})
		if rng.IntN(7) == 0 { // now and then the oldest leaves by itself (expiry)
			r.free(fifo[0].sp)
			fifo = fifo[1:]
		}
		for _, l := range fifo {
			if got := r.read(l.sp); !bytes.Equal(got, l.want) && !(len(got) == 0 && len(l.want) == 0) {
				t.Fatalf("put %d: a result at %+v reads back changed", i, l.sp)
			}
		}
	}
	for _, l := range fifo {
		r.free(l.sp)
	}
	if r.head != 0 || r.tail != 0 || r.wrapped {
		t.Fatalf("an emptied ring is not reset: head %d tail %d wrapped %v", r.head, r.tail, r.wrapped)
	}
}

// TestRetainedResultsAreOffTheHeap retains 48 MiB of results and checks the collected
// heap did not grow by them: results kept on the heap are what made the master twice as
// dear per job at 64 KiB (resultring.go).
func TestRetainedResultsAreOffTheHeap(t *testing.T) {
	switch runtime.GOOS {
	case "linux", "darwin", "freebsd", "netbsd", "openbsd":
	default:
		t.Skip("results are kept on the heap on " + runtime.GOOS)
	}
	var s retainStore
	s.init(time.Hour, 1000, 64<<20)
	defer s.close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	now := time.Now().UnixNano()
	for i := range 192 {
		if !s.add(outcome{id: fmt.Sprint("j", i), typ: "t", result: bytes.Repeat([]byte{byte(i)}, 256<<10)}, now) {
			t.Fatalf("outcome %d not retained", i)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Fatalf("the heap grew by %d MiB retaining 48 MiB of results, want them off the heap", grown>>20)
	}
	o, ok := s.get("j7", now)
	if !ok || len(o.result) != 256<<10 || o.result[0] != 7 || o.result[len(o.result)-1] != 7 {
		t.Fatalf("j7: held %v, %d bytes, want 256 KiB of 7s", ok, len(o.result))
	}
}

// TestRetainedResultGetIsACopy: what get returns is the caller's, so a caller that
// changes it (or keeps it while the ring wraps) changes nothing retained.
func TestRetainedResultGetIsACopy(t *testing.T) {
	var s retainStore
	s.init(time.Hour, 10, 1<<20)
	defer s.close()
	now := time.Now().UnixNano()
	in := []byte("result")
	s.add(outcome{id: "a", typ: "t", result: in}, now)
	in[0] = 'X' // the caller's own buffer is not what is retained
	o, _ := s.get("a", now)
	o.result[1] = 'Y'
	again, _ := s.get("a", now)
	if string(again.result) != "result" {
		t.Fatalf("retained result reads %q, want %q", again.result, "result")
	}
}

// TestRetainedRingMakesRoom: results whose bytes fit the bound but not the ring's free
// run (its end is too short and its front still live) free the oldest outcomes first,
// and a closed store holds nothing and gives its memory back.
func TestRetainedRingMakesRoom(t *testing.T) {
	var s retainStore
	s.init(time.Hour, 100, 10_000)
	now := time.Now().UnixNano()
	for i := range 50 {
		if !s.add(outcome{id: fmt.Sprint("j", i), typ: "t", result: bytes.Repeat([]byte{byte(i)}, 3000)}, now) {
			t.Fatalf("outcome %d not retained", i)
		}
		if s.n > 3 {
			t.Fatalf("%d outcomes of 3,000 bytes under a 10,000-byte bound", s.n)
		}
		o, ok := s.get(fmt.Sprint("j", i), now)
		if !ok || !bytes.Equal(o.result, bytes.Repeat([]byte{byte(i)}, 3000)) {
			t.Fatalf("outcome %d does not read back", i)
		}
	}
	if !s.add(outcome{id: "big", typ: "t", result: make([]byte, 9000)}, now) || s.n != 1 {
		t.Fatalf("a 9,000-byte result under a 10,000-byte bound: %d outcomes retained, want it alone", s.n)
	}
	s.close()
	if _, ok := s.get("big", now); ok || s.results.buf != nil {
		t.Fatalf("a closed store still holds an outcome (%v) or its ring (%v)", ok, s.results.buf != nil)
	}
	if s.add(outcome{id: "late", typ: "t"}, now) {
		t.Fatal("a closed store retained an outcome")
	}
}
