package dispatch

// retainIndex finds a retained outcome by its id: an open-addressing hash table of
// 8-byte entries, linear probing, at most half full, with backward-shift deletion (no
// tombstones). An entry is a 31-bit tag of the id's hash and the low 32 bits of the
// outcome's sequence number; the store rebuilds the full number (every indexed
// outcome is live, and fewer than 2³² are) and compares the id itself, so ids whose
// tags collide are told apart, each with an entry of its own.
//
// It replaced a map[uint64]uint64 plus a map for colliding ids. With 100,000 outcomes
// retained, each job probes the index three times (the id check at submit, the add,
// the drop of the oldest), and those probes miss the cache: in bench/'s dispatch-w4 at
// 64 B the map's probes were 5 % of the process's CPU. A probe here reads one cache
// line, where the map read a group's control word and then its slots. Measured alone,
// with 100,000 entries and one submit, add and drop per step: 42 ns a step against
// the map's 93–112 ns.
//
// An outcome dropped from the front of the store need not be removed at once: its entry
// is dead as soon as its sequence number falls out of the live window the store gives
// (setLive), lookups pass over it, an insert may take its place, and a sweep that moves
// on by sweepStep entries per insert removes it within one pass over the table (far
// fewer inserts than the 2³² sequence numbers an entry's 32 bits tell apart). Removing
// it at once was a probe at a random place in the table, a cache miss per job.
type retainIndex struct {
	entries []uint64 // tag<<32 | uint32(seq); 0 is an empty entry (tags are odd)
	mask    uint32   // len(entries)-1; len is a power of two
	n       int      // entries in use, dead ones included

	// windowed: entries outside [live0, live0+liveN) (sequence numbers, low 32 bits)
	// are dead; set by setLive. Without it every entry is live until removed.
	windowed bool
	live0    uint32
	liveN    uint32
	sweep    uint32 // where the next sweep starts
}

// maxRetainedJobs caps WithRetainedLimits' count: the index, at most half full,
// numbers its entries and names outcomes in 32 bits.
const maxRetainedJobs = 1 << 30

// minIndexEntries is the size of a new index.
const minIndexEntries = 64

// tagOf is the tag an entry keeps of an id's key: its upper half, odd so that no
// entry is 0. Its bits other than the lowest also pick the entry's home.
func tagOf(key uint64) uint32 { return uint32(key>>32) | 1 }

// entryTag and entrySeq take an entry apart.
func entryTag(e uint64) uint32 { return uint32(e >> 32) }
func entrySeq(e uint64) uint32 { return uint32(e) }

// home is where the probe for tag starts.
func (x *retainIndex) home(tag uint32) uint32 { return (tag >> 1) & x.mask }

// first returns the position of the first entry with tag in its probe sequence, or
// ok false. Continue with next.
func (x *retainIndex) first(tag uint32) (pos uint32, ok bool) {
	if x.n == 0 {
		return 0, false
	}
	return x.scan(tag, x.home(tag))
}

// next returns the position of the next entry with tag after pos, or ok false.
func (x *retainIndex) next(tag uint32, pos uint32) (uint32, bool) {
	return x.scan(tag, (pos+1)&x.mask)
}

// scan looks for a live entry with tag from pos on, up to the first empty entry.
func (x *retainIndex) scan(tag uint32, pos uint32) (uint32, bool) {
	for {
		e := x.entries[pos]
		if e == 0 {
			return 0, false
		}
		if entryTag(e) == tag && x.alive(e) {
			return pos, true
		}
		pos = (pos + 1) & x.mask
	}
}

// setLive gives the live window: the outcomes seq0 to seq0+n-1. Entries of others are
// dead from now on. The store calls it whenever its window moves.
func (x *retainIndex) setLive(seq0 uint64, n int) {
	x.windowed, x.live0, x.liveN = true, uint32(seq0), uint32(n)
}

// alive reports whether the entry e names a live outcome.
func (x *retainIndex) alive(e uint64) bool {
	return !x.windowed || entrySeq(e)-x.live0 < x.liveN
}

// sweepStep is how many entries an insert sweeps: 4 cache lines, read in order. With
// one outcome leaving per one retained (a busy master's steady state), a pass over a
// table of T entries takes T/sweepStep inserts and at most T/sweepStep entries are
// dead at once; resize leaves room for them (a windowed table is grown once its live
// entries would take more than 15/32 of it). A burst of expiries may leave more until
// the sweep passes; an insert that finds the table half full rehashes it without them.
const sweepStep = 32

// insert adds an entry for tag and seq, which must be live if the index is windowed:
// in an empty or dead entry of its probe sequence, after sweeping, and once the table
// has room (dead entries are dropped first; it grows if that is not enough).
func (x *retainIndex) insert(tag uint32, seq uint64) {
	if 2*(x.n+1) > len(x.entries) {
		x.resize(len(x.entries))
	}
	if x.windowed {
		x.sweepOn(sweepStep)
	}
	if x.place(uint64(tag)<<32 | uint64(uint32(seq))) {
		x.n++
	}
}

// place puts e in the first empty or dead entry of its probe sequence. Taking a dead
// one keeps every entry reachable from its home (no entry on the way becomes empty).
// It reports whether the entry was empty.
func (x *retainIndex) place(e uint64) bool {
	pos := x.home(entryTag(e))
	for {
		old := x.entries[pos]
		if old == 0 || !x.alive(old) {
			x.entries[pos] = e
			return old == 0
		}
		pos = (pos + 1) & x.mask
	}
}

// crowded reports whether live entries are too many for a table of size entries.
func (x *retainIndex) crowded(live, size int) bool {
	room := size
	if x.windowed {
		room -= 2 * size / sweepStep
	}
	return 2*live > room
}

// sweepOn removes the dead entries among the next k from the sweep's position.
func (x *retainIndex) sweepOn(k int) {
	pos := x.sweep & x.mask
	for range k {
		if e := x.entries[pos]; e != 0 && !x.alive(e) {
			x.removeAt(pos) // an entry from further on may move here: look again
			continue
		}
		pos = (pos + 1) & x.mask
	}
	x.sweep = pos
}

// set replaces the sequence number of the entry at pos.
func (x *retainIndex) set(pos uint32, seq uint64) {
	x.entries[pos] = uint64(entryTag(x.entries[pos]))<<32 | uint64(uint32(seq))
}

// remove deletes the entry for tag and seq, if there is one. The entries after it in
// its cluster move back into the gap where their probe sequence allows, so that no
// probe stops early at it.
func (x *retainIndex) remove(tag uint32, seq uint64) bool {
	want := uint64(tag)<<32 | uint64(uint32(seq))
	pos, ok := x.first(tag)
	for ok && x.entries[pos] != want {
		pos, ok = x.next(tag, pos)
	}
	if !ok {
		return false
	}
	x.removeAt(pos)
	return true
}

// removeAt deletes the entry at pos. The entries after it in its cluster move back
// into the gap where their probe sequence allows, so that no probe stops early at it.
func (x *retainIndex) removeAt(pos uint32) {
	gap := pos
	for at := (gap + 1) & x.mask; x.entries[at] != 0; at = (at + 1) & x.mask {
		// The entry at at may fill the gap unless its home lies cyclically in
		// (gap, at]: then its probe starts after the gap and would not pass it.
		h := x.home(entryTag(x.entries[at]))
		if gap < at && gap < h && h <= at || gap > at && (gap < h || h <= at) {
			continue
		}
		x.entries[gap] = x.entries[at]
		gap = at
	}
	x.entries[gap] = 0
	x.n--
}

// resize rehashes the live entries into a table of at least size entries (a power of
// two), doubled as often as needed for one more entry, and the dead ones a windowed
// table may gather (sweepStep), to leave it at most half full.
func (x *retainIndex) resize(size int) {
	live := 0
	for _, e := range x.entries {
		if e != 0 && x.alive(e) {
			live++
		}
	}
	size = max(size, minIndexEntries)
	for x.crowded(live+1, size) {
		size *= 2
	}
	old := x.entries
	x.entries, x.mask, x.n, x.sweep = make([]uint64, size), uint32(size-1), live, 0
	for _, e := range old {
		if e != 0 && x.alive(e) {
			x.place(e)
		}
	}
}

// reset empties the index and gives its memory back.
func (x *retainIndex) reset() { *x = retainIndex{} }
