package store

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
)

// A state is written as rows: one per job (keyed by its Seq) and one per blob (keyed
// by its hash). The bolt file holds them as the values of two buckets, and a snapshot
// is the same rows one after another, so one decoder (loader) rebuilds a state from
// either and checks it the same way.
//
//	job row   row version, seq, phase (1 byte), attempt, worker, spent, last error,
//	          resolved at, has outcome, [outcome], spec
//	blob row  row version, pinned
//	          followed by the blob's bytes to the end of the row
//
//	snapshot  "BFSS", snapshot version, last seq, job count, job rows (byte strings),
//	          blob count, (hash, blob row) pairs (byte strings), CRC-32C of all before it
//	          (4 bytes, little-endian)
//
// The job and blob encodings reuse the record encoding's spec and outcome.

// RowVersion is the version byte of job and blob rows.
const RowVersion = 1

// SnapshotVersion is the version of the snapshot encoding.
const SnapshotVersion = 1

const snapshotMagic = "BFSS"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendJobRow(dst []byte, e *jobEntry) []byte {
	dst = append(dst, RowVersion)
	dst = appendUint(dst, e.seq)
	dst = append(dst, byte(e.phase))
	dst = appendInt(dst, e.attempt)
	dst = appendString(dst, e.worker)
	dst = appendInt(dst, e.spent)
	dst = appendString(dst, e.lastErr)
	dst = appendTime(dst, e.resolvedAt)
	dst = appendBool(dst, e.outcome != nil)
	if e.outcome != nil {
		dst = appendOutcome(dst, e.outcome)
	}
	return appendSpec(dst, e.spec)
}

func decodeJobRow(b []byte, own bool) (*jobEntry, error) {
	rd := reader{p: b, own: own}
	if v := rd.byte("row version"); rd.err == nil && v != RowVersion {
		return nil, fmt.Errorf("%w: job row version %d, want %d", ErrFormatVersion, v, RowVersion)
	}
	e := &jobEntry{seq: rd.uint("seq"), phase: Phase(rd.byte("phase"))}
	e.attempt = rd.int("attempt")
	e.worker = rd.string("worker")
	e.spent = rd.int("spent")
	e.lastErr = rd.string("last error")
	e.resolvedAt = rd.time("resolved at")
	if rd.bool("has outcome") {
		e.outcome = decodeOutcome(&rd)
	}
	e.spec = decodeSpec(&rd)
	rd.end("job row")
	if rd.err != nil {
		return nil, rd.err
	}
	return e, nil
}

func appendBlobRow(dst []byte, b *blobEntry) []byte {
	dst = append(dst, RowVersion)
	dst = appendBool(dst, b.pinned)
	return append(dst, b.data...)
}

func decodeBlobRow(b []byte, own bool) (*blobEntry, error) {
	rd := reader{p: b, own: own}
	if v := rd.byte("row version"); rd.err == nil && v != RowVersion {
		return nil, fmt.Errorf("%w: blob row version %d, want %d", ErrFormatVersion, v, RowVersion)
	}
	e := &blobEntry{pinned: rd.bool("pinned")}
	if rd.err != nil {
		return nil, rd.err
	}
	e.data = rd.p
	if own {
		e.data = slices.Clone(rd.p)
	}
	if len(e.data) == 0 {
		e.data = []byte{} // an empty blob is held, not absent
	}
	return e, nil
}

// loader rebuilds a state from rows, checking that they make a state the records
// could have made.
type loader struct {
	s *State
}

func newLoader() *loader { return &loader{s: NewState()} }

func (l *loader) job(e *jobEntry) error {
	id := e.spec.ID
	if err := e.spec.validate(); err != nil {
		return err
	}
	if e.seq == 0 {
		return malformed("job %q has seq 0", id)
	}
	if l.s.jobs[id] != nil {
		return malformed("job %q held twice (seq %d and %d)", id, l.s.jobs[id].seq, e.seq)
	}
	switch e.phase {
	case PhaseQueued, PhaseRunning:
		if e.outcome != nil || !e.resolvedAt.IsZero() {
			return malformed("unresolved job %q has an outcome", id)
		}
		if e.phase == PhaseRunning && (e.attempt < 1 || e.worker == "") {
			return malformed("running job %q has no current attempt", id)
		}
	case PhaseResolved:
		if e.outcome == nil || e.resolvedAt.IsZero() {
			return malformed("resolved job %q has no outcome", id)
		}
		if err := e.outcome.validate(); err != nil {
			return err
		}
		if e.spec.Payload != nil || e.spec.PayloadRef != "" {
			return malformed("resolved job %q still holds its payload", id)
		}
	default:
		return malformed("job %q in unknown phase %d", id, e.phase)
	}
	normalizeSpec(e.spec)
	l.s.setJob(id, e)
	return nil
}

func (l *loader) blob(hash string, b *blobEntry) error {
	if err := validHash(hash); err != nil {
		return err
	}
	if l.s.blobs[hash] != nil {
		return malformed("blob %s held twice", hash)
	}
	l.s.setBlob(hash, b)
	return nil
}

// finish counts the blobs' references and checks them, and returns the state.
func (l *loader) finish(seq uint64) (*State, error) {
	s := l.s
	s.seq = seq
	refs := make(map[string]int)
	for id, e := range s.jobs {
		if e.seq > seq {
			return nil, malformed("job %q has seq %d, above the last one given out (%d)", id, e.seq, seq)
		}
		if e.spec.PayloadRef != "" {
			refs[e.spec.PayloadRef]++
		}
		if e.outcome != nil && e.outcome.ResultRef != "" {
			refs[e.outcome.ResultRef]++
		}
	}
	for h, n := range refs {
		b := s.blobs[h]
		if b == nil {
			return nil, malformed("blob %s is referred to by %d jobs but not held", h, n)
		}
		b.refs = n // entries are not shared yet: the loader made them
	}
	for h, b := range s.blobs {
		if !b.pinned && b.refs == 0 {
			return nil, malformed("blob %s is neither pinned nor referred to", h)
		}
	}
	return s, nil
}

// Snapshot encodes the whole state (SnapshotVersion), jobs in Seq order and blobs in
// hash order, so that equal states have equal snapshots: what a raft snapshot will
// hold, and how the tests compare states.
func (s *State) Snapshot() []byte {
	dst := append([]byte(snapshotMagic), SnapshotVersion)
	dst = appendUint(dst, s.seq)
	jobs := make([]*jobEntry, 0, len(s.jobs))
	for _, e := range s.jobs {
		jobs = append(jobs, e)
	}
	slices.SortFunc(jobs, func(a, b *jobEntry) int { return cmp.Compare(a.seq, b.seq) })
	dst = appendUint(dst, uint64(len(jobs)))
	var row []byte
	for _, e := range jobs {
		row = appendJobRow(row[:0], e)
		dst = appendBytes(dst, row)
	}
	hashes := make([]string, 0, len(s.blobs))
	for h := range s.blobs {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	dst = appendUint(dst, uint64(len(hashes)))
	for _, h := range hashes {
		dst = appendString(dst, h)
		dst = appendBytes(dst, appendBlobRow(row[:0], s.blobs[h]))
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst, castagnoli))
}

// Restore replaces the state with the one snapshot b encodes, checking it whole first:
// on error the state is unchanged. It copies what it keeps of b.
func (s *State) Restore(b []byte) error {
	n, err := restore(b)
	if err != nil {
		return err
	}
	*s = *n
	return nil
}

func restore(b []byte) (*State, error) {
	if len(b) < len(snapshotMagic)+1+4 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, malformed("not a store snapshot")
	}
	if v := b[len(snapshotMagic)]; v != SnapshotVersion {
		return nil, fmt.Errorf("%w: snapshot version %d, want %d", ErrFormatVersion, v, SnapshotVersion)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, malformed("snapshot checksum mismatch")
	}
	rd := reader{p: body[len(snapshotMagic)+1:]}
	seq := rd.uint("last seq")
	l := newLoader()
	n := rd.count("job count", 2)
	for range n {
		row := rd.raw("job row")
		if rd.err != nil {
			break
		}
		e, err := decodeJobRow(row, true)
		if err == nil {
			err = l.job(e)
		}
		if err != nil {
			return nil, err
		}
	}
	n = rd.count("blob count", 2)
	for range n {
		h := rd.string("blob hash")
		row := rd.raw("blob row")
		if rd.err != nil {
			break
		}
		e, err := decodeBlobRow(row, true)
		if err == nil {
			err = l.blob(h, e)
		}
		if err != nil {
			return nil, err
		}
	}
	rd.end("snapshot")
	if rd.err != nil {
		return nil, rd.err
	}
	return l.finish(seq)
}
