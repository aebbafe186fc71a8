package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/banfleet/banfleet/banio"
)

// Blobs ship a large input once per worker instead of once per job: the master stores
// it under its SHA-256, jobs carry only the hash, and a worker fetches a blob the first
// time one of its jobs asks for it (worker.Job.Blob) and caches it.

// Blob actions (docs/protocol.md).
const (
	// ActionBlobGet (worker → master, JSON BlobRequest): the master answers the reply
	// key with a status byte (1 found, 0 missing) followed by the blob's bytes.
	ActionBlobGet = "fleet.blob.get"
	// ActionBlobPut (client → master, raw bytes; reply key in the action after a '|'):
	// store a blob; the master answers with its hash.
	ActionBlobPut = "fleet.blob.put|"
	// ActionBlobDelete (client → master, the hash; reply key in the action after a
	// '|'): forget a blob; the master answers "1" if it held it, "0" if not.
	ActionBlobDelete = "fleet.blob.delete|"
)

// BlobRequest asks the master for a blob.
type BlobRequest struct {
	Hash  string `json:"hash"`
	Reply string `json:"reply"` // the requester's wait key
}

// BlobHash is the content address of data: "sha256:" and the hex digest.
func BlobHash(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// blobStore holds the master's blobs.
type blobStore struct {
	mu     sync.RWMutex
	blobs  map[string][]byte
	served atomic.Uint64
}

// PutBlob stores data on the master and returns its hash for jobs to refer to. Storing
// the same bytes twice keeps one copy. data must not be modified afterwards.
func (m *Master) PutBlob(data []byte) string {
	h := BlobHash(data)
	m.blobs.mu.Lock()
	if m.blobs.blobs == nil {
		m.blobs.blobs = make(map[string][]byte)
	}
	m.blobs.blobs[h] = data
	m.blobs.mu.Unlock()
	return h
}

// DeleteBlob forgets a blob, for every job that refers to it; workers that cached it
// keep their copy. It reports whether the master held it.
func (m *Master) DeleteBlob(hash string) bool {
	m.blobs.mu.Lock()
	_, held := m.blobs.blobs[hash]
	delete(m.blobs.blobs, hash)
	m.blobs.mu.Unlock()
	return held
}

// BlobsServed counts blob downloads the master has answered.
func (m *Master) BlobsServed() uint64 { return m.blobs.served.Load() }

func (m *Master) blob(hash string) ([]byte, bool) {
	m.blobs.mu.RLock()
	defer m.blobs.mu.RUnlock()
	b, ok := m.blobs.blobs[hash]
	return b, ok
}

// onBlobGet answers a worker's download. A malformed request is logged once per
// connection (lim): a peer that sends nothing else must not flood the log.
func (m *Master) onBlobGet(c *banio.BanConn, lim *badInput, msg *banio.IOMsgRaw) {
	var req BlobRequest
	err := json.Unmarshal(msg.Data, &req)
	if err == nil && req.Reply == "" {
		err = errors.New("no reply key")
	}
	if err != nil {
		lim.log(m.opts.logger, c, "bad blob request", err)
		return
	}
	// The reply is one status byte (1 found, 0 missing) and the blob: banio delivers
	// an empty message as nil, so emptiness cannot say "missing".
	data, ok := m.blob(req.Hash)
	reply := []byte{0}
	if ok {
		m.blobs.served.Add(1)
		reply = append(append(make([]byte, 0, 1+len(data)), 1), data...)
	}
	_ = c.Write(&banio.IOMsgRaw{Action: "__res__" + req.Reply, Data: reply})
}

// onBlobPut stores a blob uploaded by a remote client and answers with its hash.
func (m *Master) onBlobPut(c *banio.BanConn, msg *banio.IOMsgRaw) {
	reply := strings.TrimPrefix(msg.Action, ActionBlobPut)
	if reply == "" {
		return
	}
	data := msg.Data
	if data == nil {
		data = []byte{}
	}
	_ = c.SendWaitRes(reply, m.PutBlob(data))
}

// onBlobDelete forgets a blob at a remote client's request.
func (m *Master) onBlobDelete(c *banio.BanConn, msg *banio.IOMsgRaw) {
	reply := strings.TrimPrefix(msg.Action, ActionBlobDelete)
	if reply == "" {
		return
	}
	held := "0"
	if m.DeleteBlob(string(msg.Data)) {
		held = "1"
	}
	_ = c.SendWaitRes(reply, held)
}

// PutBlob uploads data to the master and returns its hash.
func (c *Client) PutBlob(ctx context.Context, data []byte) (string, error) {
	if data == nil {
		data = []byte{}
	}
	res, err := c.askMaster(ctx, ActionBlobPut, data)
	if err != nil {
		return "", fmt.Errorf("dispatch: upload blob: %w", err)
	}
	if want := BlobHash(data); string(res) != want {
		return "", fmt.Errorf("dispatch: upload blob: master stored %q, want %q", res, want)
	}
	return string(res), nil
}

// DeleteBlob asks the master to forget a blob, as Master.DeleteBlob does: a long-lived
// master otherwise keeps every blob its clients ever uploaded. It is gone for every
// job that refers to it, not only this client's; workers that cached it keep their
// copy. It reports whether the master held the blob.
func (c *Client) DeleteBlob(ctx context.Context, hash string) (bool, error) {
	res, err := c.askMaster(ctx, ActionBlobDelete, []byte(hash))
	if err != nil {
		return false, fmt.Errorf("dispatch: delete blob: %w", err)
	}
	return string(res) == "1", nil
}

// askMaster sends data under actionPrefix followed by a new wait key, the form of the
// blob actions, and waits for the master's answer to that key.
func (c *Client) askMaster(ctx context.Context, actionPrefix string, data []byte) ([]byte, error) {
	key := c.io.SetWait("", 1)
	if err := c.io.Write(&banio.IOMsgRaw{Action: actionPrefix + key, Data: data}); err != nil {
		c.io.CloseWaitChan(key)
		return nil, err
	}
	return c.io.WaitResult(ctx, key, 0)
}
