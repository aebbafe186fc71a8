package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// walSegment is one segment file of the log, open for appending (the committer's).
type walSegment struct {
	path   string
	f      *os.File
	size   int64 // where the next frame goes: the header's and the frames' bytes
	zeroed int64 // the file's size: size, then zeros written ahead of the frames
	chunk  int64 // how far ahead zeros are written (zeroChunk)
}

// walZeroChunk is how far ahead of its frames a segment's file is filled with zeros.
// An append inside the zeroed part overwrites blocks that are allocated, written and
// within the file's committed size, so its fdatasync writes the data pages alone; an
// append that grows the file also makes fdatasync commit the new size and block
// allocation to the file system's journal (ext4), which measured 1.7× slower per sync
// on this machine (docs/benchmarks.md, cmd/walfloor in bench/). One append in every
// chunk's worth writes the next chunk of zeros and pays that once. fallocate is no
// substitute: the extents it allocates are "unwritten", and the first write to each
// converts it in the journal all the same.
const walZeroChunk = 1 << 20

// walZeros is a chunk of zeros to write ahead with, made on first use.
var walZeros = sync.OnceValue(func() []byte { return make([]byte, walZeroChunk) })

// zeroChunk is the chunk of zeros written ahead in segments of walSize bytes: a
// segment smaller than walZeroChunk (a test's) is not padded past its own size.
func zeroChunk(walSize int64) int64 {
	return min(max((walSize+4095)/4096*4096, 4096), walZeroChunk)
}

// segmentPath is the name of segment n of the store at path.
func segmentPath(path string, n uint64) string { return fmt.Sprintf("%s.wal.%016x", path, n) }

// segmentFile is a segment found on disk.
type segmentFile struct {
	path string
	n    uint64
}

// listSegments returns the log's segments beside path, oldest first.
func listSegments(path string) ([]segmentFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: list the WAL of %s: %w", path, err)
	}
	prefix := base + ".wal."
	var segs []segmentFile
	for _, e := range ents {
		name := e.Name()
		hex, ok := strings.CutPrefix(name, prefix)
		if !ok || len(hex) != 16 {
			continue
		}
		n, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segmentFile{path: filepath.Join(dir, name), n: n})
	}
	slices.SortFunc(segs, func(a, b segmentFile) int {
		switch {
		case a.n < b.n:
			return -1
		case a.n > b.n:
			return 1
		}
		return 0
	})
	return segs, nil
}

// createSegment creates segment n and writes its header. Its directory entry is synced
// here, off the committer's path, so that the frames the committer later fdatasyncs
// into it are found after a crash; the header itself is made durable by the first
// frame's fdatasync. It returns how many fsyncs that cost.
func createSegment(path string, n uint64, chunk int64, noSync bool) (*walSegment, int, error) {
	name := segmentPath(path, n)
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("store: create WAL segment: %w", err)
	}
	h := walHeader()
	if _, err := f.Write(h); err != nil {
		f.Close()
		os.Remove(name)
		return nil, 0, fmt.Errorf("store: write WAL segment %s: %w", name, err)
	}
	syncs := 0
	if !noSync {
		if err := syncDir(filepath.Dir(name)); err != nil {
			f.Close()
			os.Remove(name)
			return nil, 0, err
		}
		syncs++
	}
	return &walSegment{path: name, f: f, size: int64(len(h)), zeroed: int64(len(h)), chunk: chunk}, syncs, nil
}

// write appends b after the last frame (it is in the file, not yet durable: sync
// makes it so). When b reaches past the zeroed part of the file, zeros are written
// after it up to the next chunk boundary (the next sync covers both). It returns how
// many bytes the file grew by.
func (s *walSegment) write(b []byte) (grown int64, err error) {
	end := s.size + int64(len(b))
	// A frame half written stays in the file as a torn last frame, which the next
	// open drops (wal_replay.go); a failed write fails the store.
	if _, err := s.f.WriteAt(b, s.size); err != nil {
		return max(end-s.zeroed, 0), fmt.Errorf("append to %s: %w", s.path, err)
	}
	s.size = end
	if end > s.zeroed {
		to := (end + s.chunk - 1) / s.chunk * s.chunk
		grown = to - s.zeroed
		s.zeroed = to
		if _, err := s.f.WriteAt(walZeros()[:to-end], end); err != nil {
			return grown, fmt.Errorf("fill %s with zeros ahead of its frames: %w", s.path, err)
		}
	}
	return grown, nil
}

// sync makes every frame written so far durable. It may run while the committer
// writes the next frame (flight.go): fdatasync covers the file's data written before
// the call, and waits for pages another sync is still writing back.
func (s *walSegment) sync() error {
	if err := fdatasync(s.f); err != nil {
		return fmt.Errorf("fdatasync %s: %w", s.path, err)
	}
	return nil
}
