package dispatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
)

// The master's side of the blob actions (protocol.ActionBlobGet, …): workers download
// blobs, remote clients upload and delete them (client_blob.go).

// onBlobGet answers a worker's download. A malformed request is logged once per
// connection (lim): a peer that sends nothing else must not flood the log.
func (m *Master) onBlobGet(c *banio.BanConn, lim *badInput, msg *banio.IOMsgRaw) {
	var req protocol.BlobRequest
	err := json.Unmarshal(msg.Data, &req)
	if err == nil && req.Reply == "" {
		err = errors.New("no reply key")
	}
	if err != nil {
		lim.log(m.opts.logger, c, "bad blob request", err)
		return
	}
	data, ok := m.blob(req.Hash)
	if !ok {
		_ = c.SendWaitRes(req.Reply, []byte{protocol.BlobMissing})
		return
	}
	// Counted before the send: the worker may have the blob, run its job and reply
	// before this goroutine runs again, and a Snapshot taken then must count it.
	m.blobs.served.Add(1)
	m.noteBlobServed(req.Hash, 1)
	// The blob follows its status byte on the wire without being copied behind it.
	err = c.SendWaitRes(req.Reply, banio.Parts{Head: []byte{protocol.BlobFound}, Body: data})
	if err != nil {
		m.blobs.served.Add(^uint64(0)) // not served after all
		m.noteBlobServed(req.Hash, -1)
	}
	if errors.Is(err, banio.ErrFrameTooLarge) {
		// Unanswered, the worker's job would wait out its download timeout.
		reason := fmt.Sprintf("its %d bytes do not fit a frame (%v); raise banio.WithMaxFrameSize on master and workers, or split the blob", len(data), err)
		_ = c.SendWaitRes(req.Reply, append([]byte{protocol.BlobUnsendable}, reason...))
		return
	}
}

// onBlobPut stores a blob uploaded by a remote client and answers with its hash, or
// with why it refused it.
func (m *Master) onBlobPut(c *banio.BanConn, msg *banio.IOMsgRaw) {
	reply := strings.TrimPrefix(msg.Action, protocol.ActionBlobPut)
	if reply == "" {
		return
	}
	data := msg.Data
	if data == nil {
		data = []byte{}
	}
	h, err := m.PutBlob(data)
	if err != nil {
		h = protocol.BlobPutRefusal(err)
	}
	_ = c.SendWaitRes(reply, h)
}

// onBlobDelete forgets a blob at a remote client's request.
func (m *Master) onBlobDelete(c *banio.BanConn, msg *banio.IOMsgRaw) {
	reply := strings.TrimPrefix(msg.Action, protocol.ActionBlobDelete)
	if reply == "" {
		return
	}
	held := "0"
	if m.DeleteBlob(string(msg.Data)) {
		held = "1"
	}
	_ = c.SendWaitRes(reply, held)
}
