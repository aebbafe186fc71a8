package worker

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
)

// DefaultBlobCacheBytes bounds the worker's in-memory blob cache.
const DefaultBlobCacheBytes = 256 << 20

// Errors of Job.Blob that retrying the job cannot cure, for errors.Is: a handler should
// not mark them Retryable.
var (
	// ErrBlobMissing: the master does not hold the blob (never stored, or deleted).
	ErrBlobMissing = errors.New("worker: blob not held by the master")
	// ErrBlobUnsendable: the blob is larger than a banio frame
	// (banio.WithMaxFrameSize), so the master cannot send it.
	ErrBlobUnsendable = errors.New("worker: blob too large to send")
)

// WithBlobCache sets how many bytes of blobs the worker keeps (least recently used
// blobs are dropped first).
func WithBlobCache(maxBytes int64) Option {
	return func(w *Worker) {
		if maxBytes > 0 {
			w.blobs.limit = maxBytes
		}
	}
}

// Blob returns the blob with the given hash (dispatch.Master.PutBlob), downloading it
// from the master the first time any job on this worker asks for it. The bytes are
// shared between jobs: do not modify them.
func (j *Job) Blob(ctx context.Context, hash string) ([]byte, error) {
	return j.worker.blobs.get(ctx, j.conn, hash)
}

// blobCache is an LRU of downloaded blobs; concurrent requests for the same missing
// blob share one download.
type blobCache struct {
	mu       sync.Mutex
	limit    int64
	size     int64
	lru      *list.List               // front = most recent; values are *blobEntry
	entries  map[string]*list.Element // by hash
	inflight map[string]*blobFetch
}

type blobEntry struct {
	hash string
	data []byte
}

type blobFetch struct {
	done chan struct{}
	data []byte
	err  error
}

func (c *blobCache) get(ctx context.Context, conn *banio.ClientIO, hash string) ([]byte, error) {
	c.mu.Lock()
	if c.entries == nil {
		c.lru, c.entries, c.inflight = list.New(), make(map[string]*list.Element), make(map[string]*blobFetch)
	}
	if el, ok := c.entries[hash]; ok {
		c.lru.MoveToFront(el)
		c.mu.Unlock()
		return el.Value.(*blobEntry).data, nil
	}
	f, ok := c.inflight[hash]
	if !ok {
		f = &blobFetch{done: make(chan struct{})}
		c.inflight[hash] = f
		go c.fetch(conn, hash, f)
	}
	c.mu.Unlock()
	// The download comes through the read loop: a job running on it must not wait
	// for it there (inline.go).
	conn.MoveReading()
	select {
	case <-f.done:
		return f.data, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fetch downloads a blob, checks its hash, and caches it.
func (c *blobCache) fetch(conn *banio.ClientIO, hash string, f *blobFetch) {
	f.data, f.err = download(conn, hash)
	c.mu.Lock()
	delete(c.inflight, hash)
	if f.err == nil && int64(len(f.data)) <= c.limit {
		c.entries[hash] = c.lru.PushFront(&blobEntry{hash: hash, data: f.data})
		c.size += int64(len(f.data))
		for c.size > c.limit {
			old := c.lru.Remove(c.lru.Back()).(*blobEntry)
			delete(c.entries, old.hash)
			c.size -= int64(len(old.data))
		}
	}
	c.mu.Unlock()
	close(f.done)
}

func download(conn *banio.ClientIO, hash string) ([]byte, error) {
	key := conn.SetWait("", 1)
	err := conn.WriteMsg(&banio.IOMsg{Action: protocol.ActionBlobGet, Data: protocol.BlobRequest{Hash: hash, Reply: key}})
	if err != nil {
		conn.CloseWaitChan(key)
		return nil, fmt.Errorf("worker: fetch blob %s: %w", hash, err)
	}
	// No timeout of its own: a large blob over a slow link may take as long as its
	// bytes keep coming (banio counts them as liveness), and a master that stops
	// answering is dropped by the heartbeat, which fails this wait with ErrConnClosed.
	// Each job waiting for the download gives up on its own context.
	data, err := conn.WaitResult(context.Background(), key, 0)
	if err != nil {
		return nil, fmt.Errorf("worker: fetch blob %s: %w", hash, err)
	}
	switch {
	case len(data) > 0 && data[0] == protocol.BlobUnsendable:
		return nil, fmt.Errorf("%w: %s: %s", ErrBlobUnsendable, hash, data[1:])
	case len(data) == 0 || data[0] != protocol.BlobFound:
		return nil, fmt.Errorf("%w: %s", ErrBlobMissing, hash)
	}
	data = data[1:]
	if got := protocol.BlobHash(data); got != hash {
		return nil, fmt.Errorf("worker: blob %s: received bytes hash to %s", hash, got)
	}
	return data, nil
}
