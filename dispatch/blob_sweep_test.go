package dispatch_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/sweep"
	"github.com/banfleet/banfleet/worker"
)

// blobLen is a handler that fetches the blob named by the payload and returns its
// length.
func blobLen(ctx context.Context, j *worker.Job) (any, error) {
	b, err := j.Blob(ctx, string(j.Payload))
	if err != nil {
		return nil, err
	}
	return strconv.Itoa(len(b)), nil
}

func TestBlobShippedOncePerWorker(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	for range 2 {
		f.startWorker(map[string]worker.Handler{"len": blobLen}, worker.WithConcurrency(4))
	}
	data := bytes.Repeat([]byte("ohlcv"), 200_000) // 1 MB
	hash, err := f.master.PutBlob(data)
	if err != nil || hash != protocol.BlobHash(data) {
		t.Fatalf("PutBlob = %s, %v", hash, err)
	}
	jobs := make([]dispatch.Job, 500)
	for i := range jobs {
		jobs[i] = dispatch.Job{Type: "len", Payload: hash}
	}
	s, err := sweep.Start(context.Background(), f.master, jobs, sweep.Options{MaxInFlight: 64})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range s.Results() {
		if r.Err != nil || string(r.Result) != strconv.Itoa(len(data)) {
			t.Fatalf("job %d: %q %v", r.Index, r.Result, r.Err)
		}
		n++
	}
	if n != len(jobs) {
		t.Fatalf("%d results, want %d", n, len(jobs))
	}
	if served := f.master.BlobsServed(); served != 2 {
		t.Fatalf("blob served %d times for 500 jobs on 2 workers, want 2", served)
	}
	if _, err := f.master.Call(context.Background(), "len", "sha256:missing"); err == nil {
		t.Fatal("a missing blob must fail the job")
	}
}

func TestClientPutBlob(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	f.startWorker(map[string]worker.Handler{"len": blobLen})
	c := newClient(t, f.addr)
	hash, err := c.PutBlob(context.Background(), []byte("remote data"))
	if err != nil || hash != protocol.BlobHash([]byte("remote data")) {
		t.Fatalf("PutBlob: %s %v", hash, err)
	}
	if res, err := c.Call(context.Background(), "len", hash); err != nil || string(res) != "11" {
		t.Fatalf("job using an uploaded blob: %q %v", res, err)
	}

	// Deleted, it is gone for jobs on a worker that never cached it.
	if held, err := c.DeleteBlob(context.Background(), hash); err != nil || !held {
		t.Fatalf("DeleteBlob: held %v, %v", held, err)
	}
	if held, err := c.DeleteBlob(context.Background(), hash); err != nil || held {
		t.Fatalf("DeleteBlob again: held %v, %v; want false", held, err)
	}
	f.startWorker(map[string]worker.Handler{"len2": blobLen})
	if _, err := c.Call(context.Background(), "len2", hash); err == nil {
		t.Fatal("a job ran on a deleted blob that its worker never had")
	}
}
