package dispatch

import (
	"math/rand/v2"
	"testing"
)

// TestRetainIndexAgainstAModel inserts and removes entries at random, with tags from a
// handful (so that they collide and their clusters wrap around the table's end), and
// after every step finds each live entry under its tag and no removed one.
func TestRetainIndexAgainstAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var x retainIndex
	live := map[uint64]uint32{}  // seq → tag
	var seq uint64 = 1<<32 - 100 // the low 32 bits wrap during the test
	tags := []uint32{1, 3, 63, 65, 127, 129, 1<<31 | 1, 1<<32 - 1}
	for step := range 20_000 {
		if len(live) < 40 && rng.IntN(3) > 0 || len(live) == 0 {
			tag := tags[rng.IntN(len(tags))]
			x.insert(tag, seq)
			live[seq] = tag
			seq++
		} else {
			for s, tag := range live { // a random live entry
				if !x.remove(tag, s) {
					t.Fatalf("step %d: remove of a live entry failed", step)
				}
				delete(live, s)
				if x.remove(tag, s) {
					t.Fatalf("step %d: an entry was removed twice", step)
				}
				break
			}
		}
		if x.n != len(live) || 2*x.n > len(x.entries) {
			t.Fatalf("step %d: %d entries in a table of %d, want %d at most half full", step, x.n, len(x.entries), len(live))
		}
		for s, tag := range live {
			if !indexHas(&x, tag, s) {
				t.Fatalf("step %d: entry %d under tag %d not found", step, s, tag)
			}
		}
	}
}

// indexHas reports whether x has an entry for tag and seq.
func indexHas(x *retainIndex, tag uint32, seq uint64) bool {
	for pos, ok := x.first(tag); ok; pos, ok = x.next(tag, pos) {
		if entrySeq(x.entries[pos]) == uint32(seq) {
			return true
		}
	}
	return false
}

// TestRetainIndexEmpty: an empty index, new or reset, finds nothing and removes
// nothing.
func TestRetainIndexEmpty(t *testing.T) {
	var x retainIndex
	if _, ok := x.first(7); ok || x.remove(7, 1) {
		t.Fatal("a new index found an entry")
	}
	x.insert(7, 1)
	x.reset()
	if _, ok := x.first(7); ok || x.remove(7, 1) || x.entries != nil {
		t.Fatal("a reset index found an entry or kept its memory")
	}
}
