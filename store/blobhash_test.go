package store_test

import (
	"testing"

	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/store"
)

// TestBlobHashIsProtocols: the store keys blobs by the same content address workers ask
// for (protocol.BlobHash). store does not import protocol (it would pull in
// OpenTelemetry for three lines), so this test keeps the two from drifting apart.
func TestBlobHashIsProtocols(t *testing.T) {
	for _, data := range [][]byte{nil, {}, []byte("bars"), make([]byte, 1<<16)} {
		if got, want := store.BlobHash(data), protocol.BlobHash(data); got != want {
			t.Fatalf("store.BlobHash = %s, protocol.BlobHash = %s", got, want)
		}
	}
}
