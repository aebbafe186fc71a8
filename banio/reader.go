package banio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"
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
		msg, err := c.readMsgFrom(nc)
		if err != nil {
			if errors.Is(err, ErrBadMessage) || errors.Is(err, ErrInflatedTooLarge) {
				c.badLog.log(c.log, slog.LevelWarn, "banio: dropped undecodable message", "err", err)
				continue
			}
			return err
		}
		c.route(msg)
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
	c.mu.Lock()
	br := c.br
	if c.nc != nc || br == nil {
		c.mu.Unlock()
		return nil, ErrConnClosed
	}
	c.mu.Unlock()
	body, err := c.readFrame(br)
	if err != nil {
		return nil, err
	}
	c.lastRead.Store(time.Now().UnixNano())
	wm, err := decodeBody(body)
	if err != nil {
		return nil, err
	}
	msg := &IOMsgRaw{Action: wm.Action, NoEncrypt: wm.NoEncrypt}
	msg.Data, err = c.decodeData(wm)
	if err != nil {
		return nil, fmt.Errorf("action %q: %w", wm.Action, err)
	}
	return msg, nil
}

// readFrame reads one length-prefixed frame body into the connection's reusable
// buffer. The size is checked before anything is allocated.
func (c *BanConn) readFrame(br *bufio.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if uint64(n) > uint64(c.cfg.maxFrame) {
		return nil, fmt.Errorf("%w: peer announced %d bytes, limit %d", ErrFrameTooLarge, n, c.cfg.maxFrame)
	}
	if cap(c.rbuf) < int(n) || cap(c.rbuf) > maxKeptBuffer {
		c.rbuf = make([]byte, n)
	}
	body := c.rbuf[:n]
	if _, err := io.ReadFull(br, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("banio: truncated frame: %w", err)
	}
	return body, nil
}

// decodeData decrypts and decompresses a message's Data (banio-wire.md §4).
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
	c.push(msg)
}

// refuseUnauthenticated closes a connection that acted before authenticating.
func (c *BanConn) refuseUnauthenticated(msg *IOMsgRaw) {
	c.log.Warn("banio: action before authentication, closing", "action", msg.Action)
	c.closeWithError(fmt.Errorf("%w: action %q before authentication", ErrAuthFailed, msg.Action))
}
