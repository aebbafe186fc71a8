package banio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
)

// The read path: one goroutine per connection reads frames, decodes them and routes
// each message. `__res__` results and the handshake are handled right here, never
// behind a handler; everything else goes to the handler goroutine in arrival order.

// resPrefix starts the action of a result for a wait key (SendWaitRes).
const resPrefix = "__res__"

// readLoop reads from nc until it fails. A frame that cannot be decoded is logged and
// skipped; a broken length header or an oversized frame ends the loop (the stream cannot
// be resynchronised).
func (c *BanConn) readLoop(nc net.Conn) error {
	if nc == nil {
		return ErrConnClosed
	}
	for {
		wm, err := c.readWire(nc)
		if err == nil {
			if key, ok := strings.CutPrefix(wm.Action, resPrefix); ok && c.authed.Load() {
				// A result: straight to its wait, without building an IOMsgRaw or
				// copying the action (key only serves the lookup).
				var data []byte
				if data, err = c.decodeData(wm); err == nil {
					c.waits.deliver(key, data)
					continue
				}
				err = fmt.Errorf("action %q: %w", wm.Action, err)
			} else {
				var msg *IOMsgRaw
				if msg, err = c.finishMsg(wm); err == nil {
					c.route(msg)
					continue
				}
			}
		}
		if errors.Is(err, ErrBadMessage) || errors.Is(err, ErrInflatedTooLarge) {
			c.badLog.log(c.log, slog.LevelWarn, "banio: dropped undecodable message", "err", err)
			continue
		}
		return err
	}
}

// ReadMsg reads and decodes one message, for callers that drive the read loop
// themselves instead of calling RunForever (never both). Undecodable messages are
// returned as errors wrapping ErrBadMessage; the stream stays usable after them.
func (c *BanConn) ReadMsg() (*IOMsgRaw, error) {
	nc := c.currentSocket()
	if nc == nil {
		return nil, ErrConnClosed
	}
	return c.readMsgFrom(nc)
}

// readMsgFrom reads one frame from nc's buffered reader and decodes it.
func (c *BanConn) readMsgFrom(nc net.Conn) (*IOMsgRaw, error) {
	wm, err := c.readWire(nc)
	if err != nil {
		return nil, err
	}
	return c.finishMsg(wm)
}

// readWire reads one frame from nc's buffered reader and decodes its gob value. The
// result aliases the connection's read buffer: it is valid until the next read.
func (c *BanConn) readWire(nc net.Conn) (wireMsg, error) {
	c.mu.Lock()
	br := c.br
	if c.nc != nc || br == nil {
		c.mu.Unlock()
		return wireMsg{}, ErrConnClosed
	}
	c.mu.Unlock()
	body, err := c.readFrame(br)
	if err != nil {
		return wireMsg{}, err
	}
	c.reads.Add(1)
	// More frames already buffered: this one is part of a burst, and what inline
	// handlers send in answer had better be batched (send).
	c.readBurst.Store(br.Buffered() > 0)
	return decodeBody(body)
}

// finishMsg turns a wire message into the IOMsgRaw handlers own: Data decrypted and
// decompressed into its own memory, Action copied out of the read buffer.
func (c *BanConn) finishMsg(wm wireMsg) (*IOMsgRaw, error) {
	data, err := c.decodeData(wm)
	if err != nil {
		return nil, fmt.Errorf("action %q: %w", wm.Action, err)
	}
	return &IOMsgRaw{Action: c.internAction(wm.Action), Data: data, NoEncrypt: wm.NoEncrypt}, nil
}

// internAction returns a copy of action that does not alias the read buffer, reusing
// the previous message's copy when the action repeats (as a stream of requests' does).
// Only the reading goroutine calls it.
func (c *BanConn) internAction(action string) string {
	if action != c.lastAction {
		c.lastAction = strings.Clone(action)
	}
	return c.lastAction
}

// readFrame reads one length-prefixed frame body into the connection's reusable
// buffer. The size is checked before anything is allocated.
func (c *BanConn) readFrame(br *bufio.Reader) ([]byte, error) {
	hdr := c.hdr[:] // a field: a local array would escape through io.ReadFull
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr)
	if uint64(n) > uint64(c.cfg.maxFrame) {
		return nil, fmt.Errorf("%w: peer announced %d bytes, limit %d", ErrFrameTooLarge, n, c.cfg.maxFrame)
	}
	if int(n) > maxKeptBuffer {
		// A large frame: grow the buffer as its bytes arrive, so that a peer announcing
		// the maximum and sending nothing does not make us allocate the maximum.
		c.rbuf = nil
		return readLarge(br, int(n))
	}
	if cap(c.rbuf) < int(n) {
		c.rbuf = make([]byte, n)
	}
	body := c.rbuf[:n]
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, truncated(err)
	}
	return body, nil
}

// readLarge reads an n-byte frame body, doubling its buffer as data arrives.
func readLarge(br *bufio.Reader, n int) ([]byte, error) {
	body := make([]byte, 0, maxKeptBuffer)
	for len(body) < n {
		if len(body) == cap(body) {
			body = slices.Grow(body, min(n-len(body), len(body)))
		}
		k, err := io.ReadFull(br, body[len(body):min(n, cap(body))])
		body = body[:len(body)+k]
		if err != nil {
			return nil, truncated(err)
		}
	}
	return body, nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("banio: truncated frame: %w", err)
}

// decodeData decrypts and decompresses a message's Data (docs/protocol.md).
func (c *BanConn) decodeData(wm wireMsg) ([]byte, error) {
	data := wm.Data
	if len(data) == 0 {
		return nil, nil
	}
	if c.cfg.aead != nil && !wm.NoEncrypt {
		plain, err := open(c.cfg.aead, data)
		if err != nil {
			return nil, err
		}
		data = plain
	}
	return decodePayload(data, c.fastRecv.Load(), c.cfg.maxInflated)
}

// route delivers one decoded message.
func (c *BanConn) route(msg *IOMsgRaw) {
	if key, ok := strings.CutPrefix(msg.Action, resPrefix); ok {
		if !c.authed.Load() {
			c.refuseUnauthenticated(msg)
			return
		}
		c.waits.deliver(key, msg.Data)
		return
	}
	switch msg.Action {
	case actionHello:
		c.onHello(msg)
		return
	case actionWelcome:
		c.onWelcome(msg)
		return
	}
	if !c.authed.Load() {
		c.refuseUnauthenticated(msg)
		return
	}
	if h, ok := c.handlers.Load().find(msg.Action); ok && h.inline {
		c.run(msg, h.cb)
		return
	}
	c.push(msg)
}

// refuseUnauthenticated closes a connection that acted before authenticating.
func (c *BanConn) refuseUnauthenticated(msg *IOMsgRaw) {
	c.log.Warn("banio: action before authentication, closing", "action", msg.Action)
	c.closeWithError(fmt.Errorf("%w: action %q before authentication", ErrAuthFailed, msg.Action))
}
