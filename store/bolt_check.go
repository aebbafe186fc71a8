package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
)

// Before bbolt maps a file, checkFile reads its two meta pages and its size itself.
// bbolt trusts its file: a file cut short is mapped past its end, and the first read
// of a missing page kills the process with SIGBUS instead of returning an error. So a
// file shorter than its newest valid meta page says it must be is refused here, as is
// an empty file (a new store is only ever created whole, see createFile) and one whose
// two meta pages are both damaged.
//
// The layout read (bbolt's internal/common, file format version 2, native byte
// order): each page starts with a 16-byte header; a meta page's body is magic,
// version, page size, flags (4 bytes each), the root bucket (16), the freelist page
// id, the high-water page id, the transaction id (8 each), and an FNV-64a checksum of
// the 56 bytes before it.

const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	metaSize       = 64
)

type boltMeta struct {
	pageSize uint32
	pgid     uint64 // high-water mark: pages below it are in use or free
	txid     uint64
}

// parseMeta decodes the meta page body at b (bbolt writes it in native byte order).
func parseMeta(b []byte) (boltMeta, error) {
	if len(b) < metaSize {
		return boltMeta{}, errors.New("cut short")
	}
	le := binary.NativeEndian
	if le.Uint32(b[0:]) != boltMagic {
		return boltMeta{}, errors.New("no bbolt magic number")
	}
	if v := le.Uint32(b[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("bbolt format version %d, want %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(b[:56])
	if h.Sum64() != le.Uint64(b[56:]) {
		return boltMeta{}, errors.New("checksum mismatch")
	}
	m := boltMeta{pageSize: le.Uint32(b[8:]), pgid: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}
	if m.pageSize < 1024 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0 {
		return boltMeta{}, fmt.Errorf("page size %d", m.pageSize)
	}
	return m, nil
}

// checkFile checks an existing file before bbolt opens it. damagedMeta reports that one
// meta page was damaged and the other used: bbolt then opens the file as of the
// commit before the last (the damaged page may be a commit torn by a crash, whose
// Apply never returned).
func checkFile(path string) (damagedMeta error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size == 0 {
		return nil, corruptFile(path, errors.New("the file is empty (a store file is never left empty: it was truncated)"))
	}
	head := make([]byte, 64<<10)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	head = head[:n]
	m0, err0 := parseMeta(head[min(pageHeaderSize, len(head)):])
	// The second meta page is one page in: at the first page's page size when that
	// page is valid, else at one of the sizes bbolt could have used.
	sizes := []uint32{4096, 8192, 16384, 32768}
	if err0 == nil {
		sizes = []uint32{m0.pageSize}
	}
	var m1 boltMeta
	var err1 error // the first candidate's: the likeliest page size
	for i, ps := range sizes {
		off := int(ps) + pageHeaderSize
		m, err := parseMeta(head[min(off, len(head)):])
		if err == nil {
			m1, err1 = m, nil
			break
		}
		if i == 0 {
			err1 = err
		}
	}
	var m boltMeta
	switch {
	case err0 != nil && err1 != nil:
		what := fmt.Errorf("both meta pages are damaged (first: %v; second: %v)", err0, err1)
		if err0.Error() == "no bbolt magic number" && err1.Error() == "no bbolt magic number" {
			what = errors.New("not a bbolt file (neither meta page has bbolt's magic number)")
		}
		return nil, corruptFile(path, what)
	case err0 != nil:
		m, damagedMeta = m1, fmt.Errorf("meta page 0 is damaged (%v)", err0)
	case err1 != nil:
		m, damagedMeta = m0, fmt.Errorf("meta page 1 is damaged (%v)", err1)
	case m1.txid > m0.txid:
		m = m1
	default:
		m = m0
	}
	if need := int64(m.pgid) * int64(m.pageSize); size < need {
		return nil, corruptFile(path, fmt.Errorf("the file is truncated: %d bytes, its last commit needs %d", size, need))
	}
	return damagedMeta, nil
}

// guard runs fn, turning a panic or a memory fault while it reads the file into an
// ErrCorrupt naming the file. bbolt panics on pages it cannot make sense of (a page
// type that is neither branch nor leaf, a freelist page that is not one) and, reading
// through its memory map, a page id pointing outside the file faults; both mean the
// file is damaged, and neither should take the master down with it.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corruptFile(path, fmt.Errorf("reading it failed: %v", r))
		}
	}()
	return fn()
}
