package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// compactTxBytes bounds each transaction of a compaction, so compacting a large file
// does not hold it all in memory.
const compactTxBytes = 64 << 20

// Compact rewrites the store file at path to hold only its live pages. bbolt never
// shrinks a file: after a peak (a sweep of a million queued jobs, since run) the file
// keeps its peak size, its free pages reused by later commits but never returned. Run
// Compact while no store has the file open (before starting the master; it fails with
// ErrLocked otherwise). It opens and checks the file as OpenBolt does, copies its rows
// into a new file beside it, checks that the copy holds the same state, and only then
// renames it into place. It returns the file's size before and after.
//
// A log left beside the file by a crash is accounted for by opening the store as
// OpenBolt does: its commits are replayed and checkpointed into the file before the
// copy is made, and the source is closed (its log removed) before the copy replaces
// it. Refusing to compact a file with a log would be sound too, but would send the
// operator to start and stop a master first for no gain.
func Compact(path string, opts ...Option) (before, after int64, err error) {
	src, err := OpenBolt(path, opts...)
	if err != nil {
		return 0, 0, err
	}
	srcOpen := true
	defer func() {
		if srcOpen {
			src.Close()
		}
	}()
	want, err := src.Load()
	if err != nil {
		return 0, 0, err
	}
	before = src.Stats().FileBytes

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+".compact-*")
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact %s: %w", path, err)
	}
	name := tmp.Name()
	tmp.Close()
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(name)
		}
	}()
	o := buildOptions(opts)
	bo := boltOptions(o)
	bo.NoSync = false
	dst, err := bolt.Open(name, 0o600, bo)
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact %s: %w", path, err)
	}
	// OpenBolt checkpointed whatever its log held, and nothing was applied since:
	// the file holds the whole state.
	err = bolt.Compact(dst, src.db, compactTxBytes)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	srcOpen = false
	if cerr := src.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact %s: %w", path, err)
	}
	// The copy must hold exactly what the file does before it replaces it.
	cp, err := OpenBolt(name, opts...)
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact %s: the copy does not open: %w", path, err)
	}
	got, err := cp.Load()
	after = cp.Stats().FileBytes
	if cerr := cp.Close(); err == nil {
		err = cerr
	}
	if err == nil && !bytes.Equal(got.Snapshot(), want.Snapshot()) {
		err = errors.New("the copy holds a different state")
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		return 0, 0, fmt.Errorf("store: compact %s: %w", path, err)
	}
	renamed = true
	return before, after, syncDir(dir)
}
