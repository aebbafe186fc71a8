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

// TestRetainIndexSweepsInSteadyState: with one outcome leaving per one retained, the
// sweep keeps the dead entries to what one pass over the table leaves.
func TestRetainIndexSweepsInSteadyState(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var x retainIndex
	const live = 3000
	var seq0, seq uint64
	for step := range 100_000 {
		x.setLive(seq0, int(seq-seq0+1))
		x.insert(rng.Uint32()|1, seq)
		seq++
		if seq-seq0 > live {
			seq0++
			x.setLive(seq0, int(seq-seq0))
		}
		if dead := x.n - int(seq-seq0); dead > len(x.entries)/sweepStep+1 {
			t.Fatalf("step %d: %d dead entries in a table of %d, more than one sweep leaves", step, dead, len(x.entries))
		}
	}
	if len(x.entries) != 8192 {
		t.Fatalf("%d live entries in a table of %d, want 8192", live, len(x.entries))
	}
}

// TestRetainIndexWindowed is the store's use of the index: entries inserted in
// sequence, outcomes leaving from the front by the live window alone. After every step
// each live entry is found under its tag and no dead one is; dead entries are swept so
// that the table stays at most half full and never grows for them.
func TestRetainIndexWindowed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var x retainIndex
	tags := []uint32{1, 3, 63, 65, 127, 129, 1<<31 | 1, 1<<32 - 1}
	tagOfSeq := map[uint64]uint32{}
	const maxLive = 300
	var seq0, seq uint64 = 1<<32 - 5000, 1<<32 - 5000 // the low 32 bits wrap during the test
	for step := range 60_000 {
		if seq-seq0 < maxLive && rng.IntN(2) == 0 || seq == seq0 {
			tag := tags[rng.IntN(len(tags))]
			if rng.IntN(4) == 0 {
				tag = rng.Uint32() | 1 // and some of their own
			}
			x.setLive(seq0, int(seq-seq0+1))
			x.insert(tag, seq)
			tagOfSeq[seq] = tag
			seq++
		} else {
			drop := 1 + rng.IntN(int(seq-seq0))
			for range drop {
				delete(tagOfSeq, seq0)
				seq0++
			}
			x.setLive(seq0, int(seq-seq0))
		}
		if 2*x.n > len(x.entries) {
			t.Fatalf("step %d: %d entries in a table of %d, more than half full", step, x.n, len(x.entries))
		}
		if len(x.entries) > 2048 {
			t.Fatalf("step %d: the table grew to %d entries for at most %d live", step, len(x.entries), maxLive)
		}
		if step%50 != 0 {
			continue
		}
		for s, tag := range tagOfSeq {
			if !indexHas(&x, tag, s) {
				t.Fatalf("step %d: live entry %d under tag %d not found", step, s, tag)
			}
		}
		for s := seq0 - min(seq0, 20); s < seq0; s++ {
			for _, tag := range tags {
				if indexHas(&x, tag, s) {
					t.Fatalf("step %d: dead entry %d found under tag %d", step, s, tag)
				}
			}
		}
	}
}
