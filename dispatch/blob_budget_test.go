package dispatch_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

func TestBlobStoreBudget(t *testing.T) {
	leakcheck.Check(t)
	const budget = 4 << 20
	f := newFleet(t, dispatch.WithBlobStoreLimit(budget))
	c := newClient(t, f.addr)
	ctx := context.Background()

	// The attack: uploads of compressible bytes, a few KiB each on a compressed wire,
	// until the store is full.
	blob := func(i int) []byte { return append([]byte(strconv.Itoa(i)), make([]byte, 1<<20)...) }
	var hashes []string
	var full error
	for i := range 20 {
		h, err := c.PutBlob(ctx, blob(i))
		if err != nil {
			full = err
			break
		}
		hashes = append(hashes, h)
	}
	if !errors.Is(full, dispatch.ErrBlobStoreFull) || !strings.Contains(full.Error(), "DeleteBlob") || !strings.Contains(full.Error(), strconv.Itoa(budget)) {
		t.Fatalf("uploads past the budget: %v; want ErrBlobStoreFull naming the budget and DeleteBlob", full)
	}
	st := f.master.BlobStats()
	if st.Bytes > budget || st.Count != len(hashes) || st.Count != 3 || st.Limit != budget {
		t.Fatalf("after %d accepted uploads the store holds %+v, budget %d", len(hashes), st, budget)
	}
	if _, err := f.master.PutBlob(blob(99)); !errors.Is(err, dispatch.ErrBlobStoreFull) {
		t.Fatalf("Master.PutBlob past the budget: %v", err)
	}

	// The same bytes again count once, even with the store full.
	if h, err := c.PutBlob(ctx, blob(0)); err != nil || h != hashes[0] {
		t.Fatalf("storing a held blob again: %s %v", h, err)
	}
	if again := f.master.BlobStats(); again.Bytes != st.Bytes || again.Count != st.Count {
		t.Fatalf("a blob stored twice counted twice: %+v, then %+v", st, again)
	}

	// A refusal evicts nothing: a job that refers to a blob uploaded before still
	// finds it.
	f.startWorker(map[string]worker.Handler{"len": blobLen})
	if res, err := f.master.Call(ctx, "len", hashes[0]); err != nil || string(res) != strconv.Itoa(len(blob(0))) {
		t.Fatalf("job on a blob held before the refusal: %q %v", res, err)
	}

	// Deleting frees budget, from either side.
	if !f.master.DeleteBlob(hashes[1]) {
		t.Fatal("DeleteBlob: not held")
	}
	if held, err := c.DeleteBlob(ctx, hashes[2]); err != nil || !held {
		t.Fatalf("Client.DeleteBlob: %v %v", held, err)
	}
	if st := f.master.BlobStats(); st.Count != 1 || st.Bytes != int64(len(blob(0))) {
		t.Fatalf("after deleting two of three blobs: %+v", st)
	}
	if _, err := c.PutBlob(ctx, blob(98)); err != nil {
		t.Fatalf("upload after deleting: %v", err)
	}
	if _, err := f.master.PutBlob(bytes.Repeat([]byte{1}, budget+1)); !errors.Is(err, dispatch.ErrBlobStoreFull) {
		t.Fatalf("a blob larger than the whole budget: %v", err)
	}
}
