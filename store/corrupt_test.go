package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
	bolt "go.etcd.io/bbolt"
)

// A damaged file must fail to open with an error that names it and says what to do,
// never come up as an empty or partial store.

// filledFile makes a store of n queued jobs, all written by one commit (so each
// payload is in the file exactly once, on a live page), and returns its path.
func filledFile(t *testing.T, n int) string {
	t.Helper()
	b, path := openTemp(t)
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Submitted(Spec{ID: fmt.Sprintf("job-%05d", i), Type: "t", Payload: fmt.Appendf(nil, "PAYLOAD-%05d-%s", i, strings.Repeat(".", 80))})
	}
	if err := b.Apply(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantDamaged checks that opening path fails with ErrCorrupt (or want) and an error
// that names the file and the remedy.
func wantDamaged(t *testing.T, path string, want error, what ...string) {
	t.Helper()
	b, err := OpenBolt(path, WithLockTimeout(100*time.Millisecond))
	if err == nil {
		st, _ := b.Load()
		b.Close()
		t.Fatalf("a damaged file opened, holding %d jobs", st.Len())
	}
	if !errors.Is(err, want) {
		t.Fatalf("%v is not %v", err, want)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) || !strings.Contains(msg, "move it aside") {
		t.Errorf("error does not name the file and the remedy: %v", err)
	}
	for _, w := range what {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not say %q: %v", w, err)
		}
	}
	t.Log(err)
}

func metas(t *testing.T, path string) (boltMeta, boltMeta) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m0, err := parseMeta(data[pageHeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	m1, err := parseMeta(data[int(m0.pageSize)+pageHeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	return m0, m1
}

func TestOpenTruncated(t *testing.T) {
	leakcheck.Check(t)
	path := filledFile(t, 2000)
	m0, m1 := metas(t, path)
	m := m0
	if m1.txid > m0.txid {
		m = m1
	}
	ps, hwm := int64(m.pageSize), int64(m.pgid)*int64(m.pageSize)
	orig, _ := os.ReadFile(path)
	for _, size := range []int64{0, 100, ps + 100, 3 * ps, hwm / 2, hwm - ps, hwm - 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			if err := os.WriteFile(path, orig[:size], 0o600); err != nil {
				t.Fatal(err)
			}
			wantDamaged(t, path, ErrCorrupt)
		})
	}
	// Cut past the last commit's pages the file is whole.
	if err := os.WriteFile(path, orig[:hwm], 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatalf("a file cut after its last page: %v", err)
	}
	defer b.Close()
	if n := b.Stats().Jobs; n != 2000 {
		t.Fatalf("%d jobs", n)
	}
}

func TestOpenDamagedRow(t *testing.T) {
	leakcheck.Check(t)
	path := filledFile(t, 2000)
	data, _ := os.ReadFile(path)
	mark := []byte("PAYLOAD-01234-")
	if n := bytes.Count(data, mark); n != 1 {
		t.Fatalf("the payload is in the file %d times", n)
	}
	i := bytes.Index(data, mark)
	data[i+len(mark)+3] ^= 0x01 // one bit of a payload
	os.WriteFile(path, data, 0o600)
	wantDamaged(t, path, ErrCorrupt, "checksum")
}

func TestOpenDamagedPage(t *testing.T) {
	leakcheck.Check(t)
	for name, fill := range map[string]func([]byte){
		"zeros": func(p []byte) { clear(p) },
		"random": func(p []byte) {
			r := rand.New(rand.NewPCG(1, 2))
			for i := range p {
				p[i] = byte(r.Uint32())
			}
		},
		"header": func(p []byte) { binary.NativeEndian.PutUint16(p[10:], 0xffff) }, // the element count
	} {
		t.Run(name, func(t *testing.T) {
			path := filledFile(t, 2000)
			data, _ := os.ReadFile(path)
			m0, _ := metas(t, path)
			ps := int(m0.pageSize)
			page := bytes.Index(data, []byte("PAYLOAD-01000-")) / ps * ps
			fill(data[page : page+ps])
			os.WriteFile(path, data, 0o600)
			wantDamaged(t, path, ErrCorrupt)
		})
	}
}

func TestOpenDamagedMeta(t *testing.T) {
	leakcheck.Check(t)
	b, path := openTemp(t)
	if err := b.Apply(ctx, Submitted(Spec{ID: "first", Type: "t"})); err != nil {
		t.Fatal(err)
	}
	before := load(t, b).Snapshot()
	if err := b.checkpointNow(); err != nil { // the commit before the last one
		t.Fatal(err)
	}
	if err := b.Apply(ctx, Submitted(Spec{ID: "second", Type: "t"})); err != nil {
		t.Fatal(err)
	}
	b.Close()
	orig, _ := os.ReadFile(path)
	m0, m1 := metas(t, path)
	ps := int(m0.pageSize)
	newest := 0
	if m1.txid > m0.txid {
		newest = ps
	}

	// One damaged meta page: bbolt opens the file at the commit before (what a
	// commit torn by a crash leaves), and the store says so in its log.
	data := bytes.Clone(orig)
	data[newest+pageHeaderSize+20] ^= 0xff
	os.WriteFile(path, data, 0o600)
	var logged strings.Builder
	b, err := OpenBolt(path, WithLogger(testLogger(&logged)))
	if err != nil {
		t.Fatal(err)
	}
	if got := load(t, b).Snapshot(); !bytes.Equal(got, before) {
		t.Error("not the previous commit's state")
	}
	b.Close()
	if !strings.Contains(logged.String(), "meta page") {
		t.Errorf("nothing logged: %q", logged.String())
	}

	// Both damaged: refused.
	data = bytes.Clone(orig)
	data[pageHeaderSize+20] ^= 0xff
	data[ps+pageHeaderSize+20] ^= 0xff
	os.WriteFile(path, data, 0o600)
	wantDamaged(t, path, ErrCorrupt, "both meta pages")
}

func TestOpenNotAStore(t *testing.T) {
	leakcheck.Check(t)
	dir := t.TempDir()
	text := dir + "/text.db"
	os.WriteFile(text, bytes.Repeat([]byte("not a database\n"), 1000), 0o600)
	wantDamaged(t, text, ErrCorrupt, "not a bbolt file")

	other := dir + "/other.db"
	db, err := bolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("something")); return err })
	db.Close()
	wantDamaged(t, other, ErrCorrupt, "not a banfleet store")
}

// editFile changes a closed store's file through bbolt, as damage or a future version
// would leave it.
func editFile(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestOpenUnknownFormat(t *testing.T) {
	leakcheck.Check(t)
	path := filledFile(t, 10)
	editFile(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, binary.AppendUvarint(nil, 99))
	})
	wantDamaged(t, path, ErrFormatVersion, "format 99", "reads format 2")

	// A row in an unknown version, sealed right.
	path = filledFile(t, 10)
	editFile(t, path, func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketJobs)
		k, v := jobs.Cursor().First()
		row := bytes.Clone(v[:len(v)-4])
		row[0] = 9
		return jobs.Put(bytes.Clone(k), binary.LittleEndian.AppendUint32(row, rowSum(k, row)))
	})
	wantDamaged(t, path, ErrFormatVersion, "row version 9")
}

func TestOpenLostRows(t *testing.T) {
	leakcheck.Check(t)
	path := filledFile(t, 10)
	editFile(t, path, func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketJobs).Cursor().First()
		return tx.Bucket(bucketJobs).Delete(bytes.Clone(k))
	})
	wantDamaged(t, path, ErrCorrupt, "pages are lost")
}

func TestOpenLocked(t *testing.T) {
	leakcheck.Check(t)
	b, path := openTemp(t)
	defer b.Close()
	start := time.Now()
	_, err := OpenBolt(path, WithLockTimeout(200*time.Millisecond))
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "is another master running on this data dir?") || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to fail", d)
	}
	t.Log(err)
}
