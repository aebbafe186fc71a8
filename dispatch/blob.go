package dispatch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/store"
)

// Blobs ship a large input once per worker instead of once per job: the master stores
// it under its SHA-256, jobs carry only the hash, and a worker fetches a blob the first
// time one of its jobs asks for it (worker.Job.Blob) and caches it.
//
// The master's store has a budget of bytes (WithBlobStoreLimit). A blob that does not
// fit is refused, never made room for by evicting another: a job may sit in its queue
// holding nothing but a blob's hash and fetch the blob only once it runs, so an evicted
// blob would turn an upload that succeeded into jobs failing later, on workers, for a
// reason their callers never see. A refused upload fails at once, where its caller can
// delete blobs it no longer needs (DeleteBlob) and try again.

// DefaultBlobStoreBytes is the default budget of the master's blob store: the bytes of
// all blobs it holds together (WithBlobStoreLimit). 1 GiB holds the inputs of a few
// sweeps (bar data, models) with room to spare on a typical master host, and is four
// times a worker's default blob cache (worker.DefaultBlobCacheBytes).
const DefaultBlobStoreBytes int64 = 1 << 30

// WithBlobStoreLimit sets the budget of the master's blob store in bytes (default
// DefaultBlobStoreBytes). PutBlob refuses, with ErrBlobStoreFull, a new blob that
// would take the blobs held past it. n <= 0 keeps the default.
func WithBlobStoreLimit(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.blobStoreBytes = n
		}
	}
}

// BlobStats is what the master's blob store holds.
type BlobStats struct {
	Count  int    `json:"count"`  // blobs held
	Bytes  int64  `json:"bytes"`  // their bytes together, counted against Limit
	Limit  int64  `json:"limit"`  // the budget (WithBlobStoreLimit)
	Served uint64 `json:"served"` // blob downloads answered
}

// blobStore holds the master's blobs.
type blobStore struct {
	mu     sync.RWMutex
	blobs  map[string][]byte
	bytes  int64 // the sum of len over blobs
	served atomic.Uint64
}

// PutBlob stores data on the master and returns its hash for jobs to refer to. Storing
// the same bytes twice keeps one copy and counts once. data must not be modified
// afterwards. A new blob that would take the store past its budget is refused with an
// error wrapping ErrBlobStoreFull; nothing held is evicted to make room. A durable
// master (OpenMaster) returns once its store holds the blob.
func (m *Master) PutBlob(data []byte) (string, error) {
	h := protocol.BlobHash(data)
	size := int64(len(data))
	limit := m.blobLimit()
	s := &m.blobs
	s.mu.Lock()
	if _, held := s.blobs[h]; held {
		s.mu.Unlock()
		return h, nil
	}
	if s.bytes+size > limit {
		defer s.mu.Unlock()
		return "", fmt.Errorf("%w: a blob of %d bytes does not fit beside the %d bytes of the %d blobs held (budget %d bytes); delete blobs no job needs any more (DeleteBlob) or raise the budget (dispatch.WithBlobStoreLimit)",
			ErrBlobStoreFull, size, s.bytes, len(s.blobs), limit)
	}
	s.bytes += size // reserved while the store records it, without holding the lock
	s.mu.Unlock()
	if m.jn != nil {
		// Durable before it is answered, like a job.
		if err := m.jn.st.Apply(context.Background(), store.BlobPutHashed(h, data)); err != nil {
			s.mu.Lock()
			s.bytes -= size
			s.mu.Unlock()
			return "", fmt.Errorf("dispatch: the master could not record the blob in its store: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, held := s.blobs[h]; held {
		s.bytes -= size // a concurrent upload of the same bytes got there first
		return h, nil
	}
	if s.blobs == nil {
		s.blobs = make(map[string][]byte)
	}
	s.blobs[h] = data
	return h, nil
}

// DeleteBlob forgets a blob, for every job that refers to it, and frees its bytes of
// the store's budget; workers that cached it keep their copy. It reports whether the
// master held it.
func (m *Master) DeleteBlob(hash string) bool {
	s := &m.blobs
	s.mu.Lock()
	defer s.mu.Unlock()
	data, held := s.blobs[hash]
	if held {
		delete(s.blobs, hash)
		s.bytes -= int64(len(data))
		if m.jn != nil {
			m.jn.record(store.BlobDeleted(hash))
		}
	}
	return held
}

// BlobsServed counts blob downloads the master has answered.
func (m *Master) BlobsServed() uint64 { return m.blobs.served.Load() }

// BlobStats reports what the blob store holds, for the status page and for tests.
func (m *Master) BlobStats() BlobStats {
	s := &m.blobs
	s.mu.RLock()
	defer s.mu.RUnlock()
	return BlobStats{Count: len(s.blobs), Bytes: s.bytes, Limit: m.blobLimit(), Served: s.served.Load()}
}

// blobLimit is the store's budget: the option's, or the default when none was given.
func (m *Master) blobLimit() int64 {
	if m.opts.blobStoreBytes > 0 {
		return m.opts.blobStoreBytes
	}
	return DefaultBlobStoreBytes
}

func (m *Master) blob(hash string) ([]byte, bool) {
	m.blobs.mu.RLock()
	defer m.blobs.mu.RUnlock()
	b, ok := m.blobs.blobs[hash]
	return b, ok
}
