package dispatch_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

func TestBlobTooLargeForFrameFailsAtOnce(t *testing.T) {
	leakcheck.Check(t)
	// The handler tells a blob it can never get from a passing failure.
	fetch := func(ctx context.Context, j *worker.Job) (any, error) {
		_, err := j.Blob(ctx, string(j.Payload))
		if errors.Is(err, worker.ErrBlobUnsendable) {
			err = &worker.Error{Code: "unsendable", Err: err}
		}
		return nil, err
	}
	f, _ := smallFrameFleet(t, false, map[string]worker.Handler{"echo": echo, "fetch": fetch})
	hash, err := f.master.PutBlob(randomBytes(2 * smallFrame))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "fetch", Payload: hash})
	if err != nil {
		t.Fatal(err)
	}
	_, err = outcome(t, tk)
	var re *dispatch.RemoteError
	if !errors.As(err, &re) || re.Code != "unsendable" || !strings.Contains(re.Message, strconv.Itoa(smallFrame)) {
		t.Fatalf("a job on a blob larger than a frame: %v; want the master's reason, naming the limit", err)
	}
	if served := f.master.BlobStats().Served; served != 0 {
		t.Fatalf("a blob that could not be sent counted as served %d times", served)
	}
}
