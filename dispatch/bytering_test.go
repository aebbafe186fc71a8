package dispatch

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/offheap"
)

// TestByteRingFIFO writes outcomes of random sizes into a small ring, freeing the
// oldest whenever the next does not fit, and checks every live one still reads back
// as written: a wrap that overwrote live bytes, or a free that lost its place, shows up
// as bytes that changed.
func TestByteRingFIFO(t *testing.T) {
	r := byteRing{want: 1000, size: 1000}
	if _, err := r.ensure(); err != nil {
		t.Fatal(err)
	}
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
		sp := r.put("", "", b)
		fifo = append(fifo, live{sp, b})
		if rng.IntN(7) == 0 { // now and then the oldest leaves by itself (expiry)
			r.free(fifo[0].sp)
			fifo = fifo[1:]
		}
		for _, l := range fifo {
			if got := r.read(l.sp, 0); !bytes.Equal(got, l.want) && !(len(got) == 0 && len(l.want) == 0) {
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
	if !offheap.OffHeap {
		t.Skip("results are kept on the heap on " + runtime.GOOS)
	}
	var s retainStore
	s.init(time.Hour, 1000, 64<<20)
	defer s.close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	now := instantNow()
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
	now := instantNow()
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
	now := instantNow()
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
	if _, ok := s.get("big", now); ok || s.bytesRing.buf != nil {
		t.Fatalf("a closed store still holds an outcome (%v) or its ring (%v)", ok, s.bytesRing.buf != nil)
	}
	if s.add(outcome{id: "late", typ: "t"}, now) {
		t.Fatal("a closed store retained an outcome")
	}
}

// TestByteRingStaysCompact: a ring that holds little at a time (a count bound far below
// the byte bound, as 100,000 outcomes of 64 B under 256 MiB) wraps to its front long
// before its end, so it touches about twice what it holds, not its whole mapping.
func TestByteRingStaysCompact(t *testing.T) {
	var s retainStore
	s.init(time.Hour, 100, 64<<20)
	defer s.close()
	now := instantNow()
	for i := range 100_000 {
		if !s.add(outcome{id: fmt.Sprint("job-", i), typ: "t", result: make([]byte, 64)}, now) {
			t.Fatalf("outcome %d not retained", i)
		}
	}
	if held := 100 * (64 + 12); s.bytesRing.touched > 4*held {
		t.Fatalf("the ring touched %d bytes holding at most %d", s.bytesRing.touched, held)
	}
}

// TestRetainedOutcomeReadsBack: what get returns is what was added (id, type, result,
// error, payload hash), for outcomes in and out of the ring's wrap, and an id that was
// never retained, or was forgotten, is not found.
func TestRetainedOutcomeReadsBack(t *testing.T) {
	var s retainStore
	s.init(time.Hour, 8, 1<<20)
	defer s.close()
	var forgotten []string
	s.forget = func(id string) { forgotten = append(forgotten, id) }
	now := instantNow()
	for i := range 20 {
		o := outcome{id: fmt.Sprint("id-", i), typ: fmt.Sprint("type-", i%3), hash: uint64(i), result: []byte(fmt.Sprint("result-", i))}
		if i%4 == 0 {
			o.result, o.err = nil, fmt.Errorf("failure %d", i)
		}
		s.add(o, now)
	}
	for i := range 20 {
		o, ok := s.get(fmt.Sprint("id-", i), now)
		if i < 12 {
			if ok {
				t.Fatalf("id-%d found, want it forgotten (8 retained at most)", i)
			}
			continue
		}
		want := fmt.Sprint("result-", i)
		if i%4 == 0 {
			want = ""
			if o.err == nil || o.err.Error() != fmt.Sprint("failure ", i) {
				t.Fatalf("id-%d: error %v, want failure %d", i, o.err, i)
			}
		}
		if !ok || o.id != fmt.Sprint("id-", i) || o.typ != fmt.Sprint("type-", i%3) || o.hash != uint64(i) || string(o.result) != want {
			t.Fatalf("id-%d: %v %+v, want type-%d, hash %d, result %q", i, ok, o, i%3, i, want)
		}
	}
	if _, ok := s.get("never", now); ok {
		t.Fatal("an id never retained was found")
	}
	if len(forgotten) != 12 || forgotten[0] != "id-0" || forgotten[11] != "id-11" {
		t.Fatalf("forgotten %q, want id-0 … id-11 in order", forgotten)
	}
	if len(s.errs) != 2 {
		t.Fatalf("%d errors held for 8 outcomes of which 2 failed", len(s.errs))
	}
}

// TestRetainedKeyCollision: ids whose index keys collide (all of them, here; a hash
// collision in practice) are each found, the newest outcome of an id retained twice
// wins, and each is forgotten in turn.
func TestRetainedKeyCollision(t *testing.T) {
	defer func(k func(string) uint64) { retainKey = k }(retainKey)
	retainKey = func(string) uint64 { return 42 }
	var s retainStore
	s.init(time.Hour, 10, 1<<20)
	defer s.close()
	var forgotten []string
	s.forget = func(id string) { forgotten = append(forgotten, id) }
	now := instantNow()
	for _, id := range []string{"a", "b", "c"} {
		s.add(outcome{id: id, typ: "t", result: []byte("r" + id)}, now)
	}
	s.add(outcome{id: "b", typ: "t", result: []byte("rb2")}, now) // retained again: from a store
	for id, want := range map[string]string{"a": "ra", "b": "rb2", "c": "rc"} {
		if o, ok := s.get(id, now); !ok || string(o.result) != want {
			t.Fatalf("%s: %v %q, want %q", id, ok, o.result, want)
		}
	}
	if _, ok := s.get("d", now); ok {
		t.Fatal("an id never retained was found among colliding ones")
	}
	s.dropHead() // a
	s.dropHead() // b's older outcome: b stays, with its newer one
	if o, ok := s.get("b", now); !ok || string(o.result) != "rb2" {
		t.Fatalf("b after its older outcome was dropped: %v %q", ok, o.result)
	}
	if _, ok := s.get("a", now); ok {
		t.Fatal("a was found after it was dropped")
	}
	s.dropHead()
	s.dropHead()
	if s.n != 0 || s.index.n != 0 {
		t.Fatalf("after all dropped: %d retained, %d indexed", s.n, s.index.n)
	}
	if want := []string{"a", "c", "b"}; fmt.Sprint(forgotten) != fmt.Sprint(want) {
		t.Fatalf("forgotten %q, want %q", forgotten, want)
	}
}

// TestByteRingSettlesForLess: where the byte bound cannot be mapped (a strict overcommit
// policy), the ring maps half as much, and so on, and outcomes are still retained,
// fewer of them; where nothing can be mapped, none are, and the store says so by
// retaining nothing rather than failing later.
func TestByteRingSettlesForLess(t *testing.T) {
	defer func(m func(int) ([]byte, error)) { mapMemory = m }(mapMemory)
	mapMemory = func(n int) ([]byte, error) {
		if n > 2<<20 {
			return nil, fmt.Errorf("cannot map %d bytes", n)
		}
		return make([]byte, n), nil
	}
	var s retainStore
	s.init(time.Hour, 1000, 64<<20)
	now := instantNow()
	for i := range 100 {
		if !s.add(outcome{id: fmt.Sprint("j", i), typ: "t", result: make([]byte, 64<<10)}, now) {
			t.Fatalf("outcome %d not retained in a ring of 2 MiB", i)
		}
	}
	if s.bytesRing.size != 2<<20 || s.n < 25 || s.n > 32 {
		t.Fatalf("ring of %d bytes holding %d outcomes of 64 KiB, want 2 MiB holding about 31", s.bytesRing.size, s.n)
	}
	if _, ok := s.get("j99", now); !ok {
		t.Fatal("the newest outcome is not retained")
	}
	s.close()

	mapMemory = func(n int) ([]byte, error) { return nil, fmt.Errorf("cannot map %d bytes", n) }
	var none retainStore
	none.init(time.Hour, 1000, 64<<20)
	if none.add(outcome{id: "a", typ: "t", result: []byte("r")}, now) || none.enabled() {
		t.Fatal("an outcome was retained, or retention still enabled, with no memory to map")
	}
}
