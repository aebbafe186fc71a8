package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
)

// The Client's side of the blob actions: it uploads blobs to the master and deletes
// them (the master's side is blob_wire.go).

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
		case ctx.Err() != nil:
			return nil, err
		case c.io.IsClosed():
			return nil, c.withCloseCause(err)
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
