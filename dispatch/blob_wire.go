package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
)

// The blob actions (protocol.ActionBlobGet, …): workers download blobs, remote clients
// upload and delete them.

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
	// The blob follows its status byte on the wire without being copied behind it.
	err = c.SendWaitRes(req.Reply, banio.Parts{Head: []byte{protocol.BlobFound}, Body: data})
	if errors.Is(err, banio.ErrFrameTooLarge) {
		// Unanswered, the worker's job would wait out its download timeout.
		reason := fmt.Sprintf("its %d bytes do not fit a frame (%v); raise banio.WithMaxFrameSize on master and workers, or split the blob", len(data), err)
		_ = c.SendWaitRes(req.Reply, append([]byte{protocol.BlobUnsendable}, reason...))
		return
	}
	if err == nil {
		m.blobs.served.Add(1)
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

// PutBlob uploads data to the master and returns its hash. When the master's blob
// store has no room for it the error wraps ErrBlobStoreFull, as Master.PutBlob's does.
func (c *Client) PutBlob(ctx context.Context, data []byte) (string, error) {
	if data == nil {
		data = []byte{}
	}
	res, err := c.askMaster(ctx, protocol.ActionBlobPut, data)
	if err != nil {
		return "", fmt.Errorf("dispatch: upload blob: %w", err)
	}
	h, err := protocol.BlobPutResult(res)
	if err != nil {
		return "", fmt.Errorf("dispatch: upload blob: %w", err)
	}
	if want := protocol.BlobHash(data); h != want {
		return "", fmt.Errorf("dispatch: upload blob: master stored %q, want %q", h, want)
	}
	return h, nil
}

// DeleteBlob asks the master to forget a blob, as Master.DeleteBlob does, freeing its
// bytes of the master's budget. It is gone for every job that refers to it, not only
// this client's; workers that cached it keep their copy. It reports whether the master
// held the blob.
func (c *Client) DeleteBlob(ctx context.Context, hash string) (bool, error) {
	res, err := c.askMaster(ctx, protocol.ActionBlobDelete, []byte(hash))
	if err != nil {
		return false, fmt.Errorf("dispatch: delete blob: %w", err)
	}
	return string(res) == "1", nil
}

// askMaster sends data under actionPrefix followed by a new wait key, the form of the
// blob actions, and waits for the master's answer to that key. Like a call, it rides
// through a lost connection: asked while the master is away, it waits for it to come
// back; cut off before its answer, it asks again (blob requests are idempotent: a blob
// is stored under its hash). Both waits are bounded by ctx and by the reconnect budget,
// past which it fails with an error wrapping ErrMasterLost.
func (c *Client) askMaster(ctx context.Context, actionPrefix string, data []byte) ([]byte, error) {
	for {
		if err := c.awaitMaster(ctx); err != nil {
			return nil, err
		}
		key := c.io.SetWait("", 1)
		c.trackAsk(key, true)
		err := c.io.Write(&banio.IOMsgRaw{Action: actionPrefix + key, Data: data})
		var res []byte
		if err == nil {
			res, err = c.io.WaitResult(ctx, key, 0)
		}
		c.trackAsk(key, false)
		c.io.CloseWaitChan(key)
		switch {
		case err == nil:
			return res, nil
		case ctx.Err() != nil, c.io.IsClosed():
			return nil, err
		case errors.Is(err, banio.ErrConnClosed), errors.Is(err, banio.ErrNoWait):
			// Cut off, or failed by the spent budget: ask again once the master is
			// back, or say it is lost.
			continue
		}
		return nil, err
	}
}

// trackAsk records the wait keys of blob requests in flight, so that a spent budget can
// fail them (a request written while disconnected waits for the next connection).
func (c *Client) trackAsk(key string, add bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if add {
		if c.asks == nil {
			c.asks = make(map[string]struct{})
		}
		c.asks[key] = struct{}{}
	} else {
		delete(c.asks, key)
	}
}
