package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A raft log entry of the cluster's is one of two kinds:
//
//	records   magic "BF", entry version, kind 1, term, group count,
//	          each group as a byte string holding a store batch (store.AppendBatch)
//	announce  magic "BF", entry version, kind 2, term, node id, banio address
//
// Integers are unsigned varints; a byte string is its length and its bytes. A group is
// the records of one Apply or ApplyThen call: the state machine applies each group
// whole or not at all, so a call the state machine refuses costs the other calls of
// the same entry nothing, as in the bolt store's group commit. The term is the raft
// term of the leadership in which the proposing master was opened: the state machine
// refuses an entry whose term is not the term raft committed it in (fencing a master
// of an earlier leadership of the same node, however its records got into the log).
// An announce entry is what a new leader appends first: which banio address its
// master serves on, for followers to redirect workers and clients to.

const (
	entryMagic   = "BF"
	entryVersion = 1

	kindRecords  byte = 1
	kindAnnounce byte = 2
)

// errMalformedEntry: bytes that are not an entry of this package.
var errMalformedEntry = errors.New("cluster: malformed log entry")

func appendEntryHeader(dst []byte, kind byte, term uint64) []byte {
	dst = append(dst, entryMagic...)
	dst = append(dst, entryVersion, kind)
	return binary.AppendUvarint(dst, term)
}

// appendRecordsHeader starts a records entry of n groups; each group is appended with
// appendGroup.
func appendRecordsHeader(dst []byte, term uint64, n int) []byte {
	dst = appendEntryHeader(dst, kindRecords, term)
	return binary.AppendUvarint(dst, uint64(n))
}

// appendGroup appends one group: a byte string of an encoded store batch.
func appendGroup(dst, batch []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(batch)))
	return append(dst, batch...)
}

func appendAnnounce(dst []byte, term uint64, id, addr string) []byte {
	dst = appendEntryHeader(dst, kindAnnounce, term)
	dst = appendString(dst, id)
	return appendString(dst, addr)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// entry is a decoded entry. Groups alias the entry's bytes.
type entry struct {
	kind   byte
	term   uint64
	groups [][]byte // records
	id     string   // announce
	addr   string   // announce
}

// decodeEntry decodes b, checking its framing (not the records: the state machine
// decodes each group as it applies it).
func decodeEntry(b []byte) (entry, error) {
	var e entry
	if len(b) < len(entryMagic)+2 || string(b[:len(entryMagic)]) != entryMagic {
		return e, fmt.Errorf("%w: not a banfleet entry", errMalformedEntry)
	}
	if v := b[len(entryMagic)]; v != entryVersion {
		return e, fmt.Errorf("%w: entry version %d, want %d (written by a newer banfleet? run the same version on every master)", errMalformedEntry, v, entryVersion)
	}
	e.kind = b[len(entryMagic)+1]
	rd := entryReader{p: b[len(entryMagic)+2:]}
	e.term = rd.uvarint()
	switch e.kind {
	case kindRecords:
		n := rd.uvarint()
		if n > uint64(len(rd.p)) { // each group takes a byte at least
			return e, fmt.Errorf("%w: %d groups in %d bytes", errMalformedEntry, n, len(rd.p))
		}
		e.groups = make([][]byte, 0, n)
		for range n {
			e.groups = append(e.groups, rd.bytes())
		}
	case kindAnnounce:
		e.id = string(rd.bytes())
		e.addr = string(rd.bytes())
	default:
		return e, fmt.Errorf("%w: unknown entry kind %d", errMalformedEntry, e.kind)
	}
	if rd.bad || len(rd.p) != 0 {
		return e, fmt.Errorf("%w: truncated or trailing bytes", errMalformedEntry)
	}
	return e, nil
}

// entryReader reads varints and byte strings; bad records that it ran out of bytes.
type entryReader struct {
	p   []byte
	bad bool
}

func (r *entryReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.bad, r.p = true, nil
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *entryReader) bytes() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.p)) {
		r.bad, r.p = true, nil
		return nil
	}
	b := r.p[:n:n]
	r.p = r.p[n:]
	return b
}
