package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// walSegment is one segment file of the log, open for appending (the committer's).
type walSegment struct {
	path string
	f    *os.File
	size int64 // bytes written, header included
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
func createSegment(path string, n uint64, noSync bool) (*walSegment, int, error) {
	name := segmentPath(path, n)
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
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
	return &walSegment{path: name, f: f, size: int64(len(h))}, syncs, nil
}

// write appends b and, unless noSync, fdatasyncs it.
func (s *walSegment) write(b []byte, noSync bool) error {
	n, err := s.f.Write(b)
	s.size += int64(n)
	if err != nil {
		return fmt.Errorf("append to %s: %w", s.path, err)
	}
	if !noSync {
		if err := fdatasync(s.f); err != nil {
			return fmt.Errorf("fdatasync %s: %w", s.path, err)
		}
	}
	return nil
}
