package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// The write-ahead log. A commit is one frame appended to the log and one fdatasync:
// the log is what makes Apply durable, and the bolt file (bolt.go) is a checkpoint of
// the state that the checkpointer (checkpoint.go) brings up to date in the background.
// bbolt costs two fsyncs per commit (its data pages, then the meta page that makes them
// current) plus the B+tree's page writes; an append costs one fdatasync of a few
// sequential pages, and it is all the committer waits for.
//
// The log is a sequence of segment files beside the bolt file, <path>.wal.<n> with n
// the segment's number in 16 hex digits: the committer writes into the newest; a
// checkpoint that finds it past WithWALSize (16 MiB by default) starts a new one and
// deletes those it covers, so the log stays bounded (checkpoint.go).
//
//	segment  header: "BFWL", WALVersion (uint32, little-endian); then frames; then
//	         zeros (version 2): the zeros written ahead of the frames
//	frame    length   uint32 LE: the payload's bytes
//	         crc      uint32 LE: CRC-32C (Castagnoli) of index and payload
//	         index    uint64 LE: the batch's index, 1, 2, … across segments, never reused
//	         payload  AppendBatch of the batch's records, as applied (refused calls
//	                  are not in it)
//
// Frames are consecutive, and frame i+1 is written at most while frame i's fdatasync
// runs (commitDepth commits in flight, flight.go), so only the last commitDepth frames
// of the log can be torn by a crash, and their callers were never told they were
// durable. Opening (wal_replay.go) drops such a torn tail; a bad frame with a valid one
// after it further than that is damage, ErrCorrupt. The bolt file's meta bucket
// records the index of the last frame its checkpoint covers ("wal"): opening replays
// the frames after it, wherever they are (a segment holds the frames of many
// checkpoints).
//
// Zeros ahead (wal_file.go): a segment's file is written with zeros a chunk (1 MiB)
// ahead of its frames, so that an append overwrites blocks already allocated and
// inside the file's size, and its fdatasync writes the data pages without a journal
// commit of the file's new size and blocks. The log ends where a frame header is all
// zeros and only zeros follow; zeros with anything else after them are a torn frame
// (or damage, if a valid frame follows), as any bad frame is. A frame's index is never
// 0, so a whole frame never starts with 16 zero bytes. Measured on this machine's ext4
// (cmd/walfloor in bench/, 8 KiB appends and fdatasync): 1.7× the syncs per second of
// appends that grow the file, which a new file every checkpoint makes slower still;
// fallocate instead of zeros did not help, since the extents it allocates are
// "unwritten" and the first write to each is journalled all the same. Segments are
// not recycled: a new one comes every 16 MiB of commits, and its zeros cost one
// chunk's write per 1 MiB of frames.
//
// WAL version 2 is version 1 with the zeros ahead: this build reads both; a build
// that reads only version 1 refuses a version 2 segment (ErrFormatVersion), which only
// a crash leaves behind (a clean Close leaves no log).

// WALVersion is the version of the log's segment and frame layout.
const WALVersion = 2

const (
	walMagic        = "BFWL"
	walHeaderSize   = 8
	frameHeaderSize = 16
	// maxFramePayload is the largest payload a frame's length can say.
	maxFramePayload = math.MaxUint32
)

// walHeader is the first bytes of every segment.
func walHeader() []byte {
	return binary.LittleEndian.AppendUint32([]byte(walMagic), WALVersion)
}

// frameSum is the CRC-32C of a frame's index and payload: b is the frame from its
// index on.
func frameSum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

var frameZeros [frameHeaderSize]byte

// appendFrame appends the frame of batch index, holding recs, to dst.
func appendFrame(dst []byte, index uint64, recs []Record) ([]byte, error) {
	h := len(dst)
	dst = append(dst, frameZeros[:]...)
	dst = AppendBatch(dst, recs)
	n := len(dst) - h - frameHeaderSize
	if n > maxFramePayload {
		return dst[:h], fmt.Errorf("a batch of %d bytes does not fit a log frame (at most %d)", n, maxFramePayload)
	}
	binary.LittleEndian.PutUint32(dst[h:], uint32(n))
	binary.LittleEndian.PutUint64(dst[h+8:], index)
	binary.LittleEndian.PutUint32(dst[h+4:], frameSum(dst[h+8:]))
	return dst, nil
}

// frame is one frame read from a segment.
type frame struct {
	index   uint64
	payload []byte // aliases the segment's bytes
	off     int    // where it starts in the segment
}

// errNotSegment is a file named like a segment that does not start like one.
var errNotSegment = errors.New("not a WAL segment (no BFWL header)")

// parseSegment splits a segment's bytes into frames. It stops at the zeros after the
// last frame, or at the first frame that is cut short or fails its CRC and returns its
// offset as bad (-1 if every byte was a whole frame or the zeros after them); whether
// that is a torn last write or damage is the caller's to decide (laterFrame). A
// segment shorter than its header holds nothing (its creation was cut short) and
// reports bad 0. An error is a header that is not a segment's, or of a WAL version
// this build does not read.
func parseSegment(data []byte) (frames []frame, bad int, err error) {
	if len(data) < walHeaderSize {
		if len(data) == 0 {
			return nil, -1, nil
		}
		return nil, 0, nil
	}
	if string(data[:len(walMagic)]) != walMagic {
		return nil, -1, errNotSegment
	}
	if v := binary.LittleEndian.Uint32(data[len(walMagic):]); v < 1 || v > WALVersion {
		return nil, -1, fmt.Errorf("%w: WAL version %d, this build reads versions 1 to %d; open the store with the banfleet that wrote it", ErrFormatVersion, v, WALVersion)
	}
	off := walHeaderSize
	for off < len(data) {
		if allZero(data[off:min(off+frameHeaderSize, len(data))]) && allZero(data[off:]) {
			return frames, -1, nil // the zeros written ahead of the frames
		}
		f, ok := frameAt(data, off)
		if !ok {
			return frames, off, nil
		}
		frames = append(frames, f)
		off += frameHeaderSize + len(f.payload)
	}
	return frames, -1, nil
}

// allZero reports whether b holds only zeros.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// frameAt reads the frame at off if a whole one with a valid CRC is there.
func frameAt(data []byte, off int) (frame, bool) {
	if len(data)-off < frameHeaderSize {
		return frame{}, false
	}
	n := int64(binary.LittleEndian.Uint32(data[off:]))
	end := int64(off) + frameHeaderSize + n
	if end > int64(len(data)) {
		return frame{}, false
	}
	body := data[off+8 : end]
	if frameSum(body) != binary.LittleEndian.Uint32(data[off+4:]) {
		return frame{}, false
	}
	return frame{index: binary.LittleEndian.Uint64(body), payload: body[8:], off: off}, true
}

// laterFrame reports whether a valid frame numbered above after starts anywhere in
// data past off: proof that the bad frame at off is not a torn last write but damage.
// Every offset is tried, as a damaged length hides where the next frame starts; the
// index is compared before the CRC is computed, so the scan costs little.
func laterFrame(data []byte, off int, after uint64) (frame, bool) {
	for p := off + 1; p+frameHeaderSize <= len(data); p++ {
		idx := binary.LittleEndian.Uint64(data[p+8:])
		if idx <= after || idx-after > 1<<32 {
			continue
		}
		if f, ok := frameAt(data, p); ok {
			return f, true
		}
	}
	return frame{}, false
}
