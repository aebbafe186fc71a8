package dispatch_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

func TestBlobTooLargeForFrameFailsAtOnce(t *testing.T) {
	leakcheck.Check(t)
	f, _ := smallFrameFleet(t, false, map[string]worker.Handler{"echo": echo, "len": blobLen})
	hash, err := f.master.PutBlob(randomBytes(2 * smallFrame))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "len", Payload: hash})
	if err != nil {
		t.Fatal(err)
	}
	_, err = outcome(t, tk)
	if err == nil || !strings.Contains(err.Error(), "cannot send it") || !strings.Contains(err.Error(), strconv.Itoa(smallFrame)) {
		t.Fatalf("a job on a blob larger than a frame: %v; want the master's reason, naming the limit", err)
	}
	if served := f.master.BlobStats().Served; served != 0 {
		t.Fatalf("a blob that could not be sent counted as served %d times", served)
	}
}
