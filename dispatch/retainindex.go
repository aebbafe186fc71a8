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
type retainIndex struct {
	entries []uint64 // tag<<32 | uint32(seq); 0 is an empty entry (tags are odd)
	mask    uint32   // len(entries)-1; len is a power of two
	n       int      // entries in use
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

// scan looks for tag from pos on, up to the first empty entry.
func (x *retainIndex) scan(tag uint32, pos uint32) (uint32, bool) {
	for {
		e := x.entries[pos]
		if e == 0 {
			return 0, false
		}
		if entryTag(e) == tag {
			return pos, true
		}
		pos = (pos + 1) & x.mask
	}
}

// insert adds an entry for tag and seq, growing the table first if it would be more
// than half full.
func (x *retainIndex) insert(tag uint32, seq uint64) {
	if 2*(x.n+1) > len(x.entries) {
		x.resize(max(2*len(x.entries), minIndexEntries))
	}
	x.place(uint64(tag)<<32 | uint64(uint32(seq)))
	x.n++
}

// place puts e in the first empty entry of its probe sequence.
func (x *retainIndex) place(e uint64) {
	pos := x.home(entryTag(e))
	for x.entries[pos] != 0 {
		pos = (pos + 1) & x.mask
	}
	x.entries[pos] = e
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
	return true
}

// resize rehashes every entry into a table of size entries (a power of two).
func (x *retainIndex) resize(size int) {
	old := x.entries
	x.entries, x.mask = make([]uint64, size), uint32(size-1)
	for _, e := range old {
		if e != 0 {
			x.place(e)
		}
	}
}

// reset empties the index and gives its memory back.
func (x *retainIndex) reset() { *x = retainIndex{} }
