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
	"time"
)

// The read path: one goroutine per connection reads frames, decodes them and routes
// each message. `__res__` results and the handshake are handled right here, never
// behind a handler; everything else goes to the handler goroutine in arrival order.

// resPrefix starts the action of a result for a wait key (SendWaitRes).
const resPrefix = "__res__"

// readLoop reads from nc until it fails. A frame that cannot be decoded is logged and
// skipped; a broken length header, an oversized frame or a decompression bomb ends the
// loop (the stream cannot be resynchronised, or the peer is hostile). Before the peer
// has authenticated, nothing but its hello is decoded: any other action ends the loop
// with its data still compressed.
func (c *BanConn) readLoop(nc net.Conn) error {
	if nc == nil {
		return ErrConnClosed
	}
	gen := c.reader.generation()
	c.reader.sock = nc
	defer func() {
		if !c.reader.movedFrom(gen) {
			c.endBatch()
		}
	}()
	for {
		if !c.readMore {
			// Nothing complete is buffered: the next read may wait on the network, so
			// the batch ends here and what its handlers deferred leaves (flush.go).
			c.endBatch()
		}
		wm, err := c.readWire(nc)
		if err == nil {
			c.beginBatch()
			if key, ok := strings.CutPrefix(wm.Action, resPrefix); ok {
				// A result: straight to its wait, without building an IOMsgRaw or
				// copying the action (key only serves the lookup).
				var data []byte
				var lent bool
				if data, lent, err = c.decodeDataView(wm); err == nil {
					c.reads.Add(1)
					c.waits.deliver(key, data, lent)
					if c.reader.movedFrom(gen) {
						return errReadMoved // a wait callback ran a task that gave the reading away
					}
					continue
				}
				err = fmt.Errorf("action %q: %w", wm.Action, err)
			} else if err = c.handleMsg(wm, gen); err == nil {
				if c.reader.movedFrom(gen) {
					return errReadMoved // the handler's task gave the reading away (movable.go)
				}
				continue
			}
		}
		if errors.Is(err, ErrBadMessage) {
			lim := &c.badLog
			if c.server != nil && c.reads.Load() == 0 {
				// A peer that never sent anything valid may be one of thousands: its
				// junk is logged once an interval for the whole server.
				lim = &c.server.strangerLog
			}
			lim.log(c.log, slog.LevelWarn, "banio: dropped undecodable message", "err", err)
			continue
		}
		if !c.authed.Load() && isTimeout(err) {
			return fmt.Errorf("%w: no hello with the token within %v", ErrAuthFailed, c.cfg.handshakeTimeout)
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
	// A complete frame buffered behind this one: the read batch goes on (flush.go).
	c.readMore = err == nil && frameBuffered(br)
	if err != nil {
		return wireMsg{}, err
	}
	wm, err := decodeBody(body)
	if err == nil && !c.authed.Load() && wm.Action != actionHello {
		// The one gate for every reader (readLoop, ReadMsg): before the peer has
		// authenticated, nothing but its hello is decoded any further.
		if err = c.refuseUnauthenticated(wm.Action); err != nil {
			c.closeWithError(err)
			return wireMsg{}, err
		}
	}
	return wm, err
}

// finishMsg turns a wire message into the IOMsgRaw handlers own: Data decrypted and
// decompressed into its own memory, Action copied out of the read buffer.
func (c *BanConn) finishMsg(wm wireMsg) (*IOMsgRaw, error) {
	data, err := c.decodeData(wm)
	if err != nil {
		return nil, fmt.Errorf("action %q: %w", wm.Action, err)
	}
	c.reads.Add(1) // a decoded message: liveness (silentFor)
	return &IOMsgRaw{Action: c.internAction(wm.Action), Data: data, NoEncrypt: wm.NoEncrypt}, nil
}

// handleMsg decodes a message and hands it over: in place to an inline view handler
// (ListenInlineView), which has it only for the call, and in memory of its own to
// anyone else (route).
func (c *BanConn) handleMsg(wm wireMsg, gen uint64) error {
	data, lent, err := c.decodeDataView(wm)
	if err != nil {
		return fmt.Errorf("action %q: %w", wm.Action, err)
	}
	c.reads.Add(1) // a decoded message: liveness (silentFor)
	action := c.internAction(wm.Action)
	var h handler
	found := false
	if action != actionHello && action != actionWelcome {
		h, found = c.handlers.Load().find(action)
		if found && h.inline && h.view {
			m := &c.viewMsg
			*m = IOMsgRaw{Action: action, Data: data, NoEncrypt: wm.NoEncrypt}
			c.run(m, h.cb)
			if !c.reader.movedFrom(gen) { // else the message is the new reader's
				*m = IOMsgRaw{}
			}
			return nil
		}
	}
	if lent {
		data = append([]byte(nil), data...)
	}
	msg := &IOMsgRaw{Action: action, Data: data, NoEncrypt: wm.NoEncrypt}
	if found {
		c.handle(msg, h) // looked up once, not again in route
		return nil
	}
	c.route(msg)
	return nil
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
// buffer. The size is checked before anything is allocated; before authentication the
// limit is the handshake's, so that a stranger can make us hold one small buffer only.
func (c *BanConn) readFrame(br *bufio.Reader) ([]byte, error) {
	hdr := c.hdr[:] // a field: a local array would escape through io.ReadFull
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr)
	if !c.authed.Load() && n > maxHandshakeBytes {
		return nil, fmt.Errorf("%w: peer announced %d bytes before authenticating, limit %d", ErrFrameTooLarge, n, maxHandshakeBytes)
	}
	if uint64(n) > uint64(c.cfg.maxFrame) {
		return nil, fmt.Errorf("%w: peer announced %d bytes, limit %d", ErrFrameTooLarge, n, c.cfg.maxFrame)
	}
	if int(n) > maxKeptBuffer {
		// A large frame: grow the buffer as its bytes arrive, so that a peer announcing
		// the maximum and sending nothing does not make us allocate the maximum.
		c.rbuf = nil
		c.ownBody = true
		return c.readLarge(br, int(n))
	}
	c.ownBody = false
	if cap(c.rbuf) < int(n) {
		c.rbuf = make([]byte, n)
	}
	body := c.rbuf[:n]
	var err error
	if n > progressChunk {
		err = c.readBody(br, body)
	} else {
		_, err = io.ReadFull(br, body)
	}
	if err != nil {
		return nil, truncated(err)
	}
	return body, nil
}

// readLarge reads an n-byte frame body, doubling its buffer as data arrives. The buffer
// is the frame's own (ownBody): a raw payload in it is handed over in place
// (decodeData). Smaller frames are not read into buffers of their own for that: a
// fresh buffer is zeroed, which costs what the copy it saves does (measured at 64 KiB).
func (c *BanConn) readLarge(br *bufio.Reader, n int) ([]byte, error) {
	body := make([]byte, 0, maxKeptBuffer)
	for len(body) < n {
		if len(body) == cap(body) {
			body = slices.Grow(body, min(n-len(body), len(body)))
		}
		end := min(n, cap(body))
		err := c.readBody(br, body[len(body):end])
		if err != nil {
			return nil, truncated(err)
		}
		body = body[:end]
	}
	return body, nil
}

// progressChunk is how much of a frame body is read between two reports of progress.
const progressChunk = 64 << 10

// readBody fills body from br, counting the bytes of a large frame still arriving as
// they come (silentFor): a large frame over a slow link is a live connection, however long
// it takes, as long as its bytes keep coming. A server also tells a banfleet peer that it
// is still reading (keepAliveWhileReading).
func (c *BanConn) readBody(br *bufio.Reader, body []byte) error {
	var lastSign time.Time
	for len(body) > 0 {
		k := min(len(body), progressChunk)
		if _, err := io.ReadFull(br, body[:k]); err != nil {
			return err
		}
		c.progress.Add(uint64(k))
		body = body[k:]
		if c.server != nil && c.pinger.Load() && c.cfg.heartbeatInterval > 0 {
			lastSign = c.keepAliveWhileReading(lastSign)
		}
	}
	return nil
}

// keepAliveWhileReading sends a pong now and then while a large frame arrives. The
// peer's pings queue behind the frame it is sending, so without these it would hear
// nothing from us until we have read the whole frame: after its last byte leaves it,
// the bytes still in the network's buffers can take longer than its heartbeat timeout
// to arrive over a slow link. A pong is what banfleet peers ignore but count as alive.
func (c *BanConn) keepAliveWhileReading(last time.Time) time.Time {
	now := time.Now()
	if now.Sub(last) < c.cfg.heartbeatInterval {
		return last
	}
	if !last.IsZero() {
		_ = c.send(actionPong, []byte("0"), nil, true, true, writeOneOff)
	}
	return now
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("banio: truncated frame: %w", err)
}

// decodeData decrypts and decompresses a message's Data (docs/protocol.md). Before
// authentication only the hello is decoded, and only up to the handshake's limit.
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
	limit := c.cfg.maxInflated
	if !c.authed.Load() {
		limit = min(limit, maxHandshakeBytes)
	}
	fast := c.fastRecv.Load()
	if c.ownBody && fast && data[0] == tagRaw && &data[0] == &wm.Data[0] {
		// The frame is in a buffer of its own (readLarge): the raw payload is handed
		// over in place instead of copied out, which for a frame of many megabytes
		// saves as many again.
		if len(data)-1 > limit {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrInflatedTooLarge, limit)
		}
		return data[1:len(data):len(data)], nil
	}
	return decodePayload(data, fast, limit)
}

// decodeDataView is decodeData for a reader that can lend what it decodes: lent
// reports that data is a view of the connection's read buffer (a raw payload in the
// reused buffer), valid only until the next frame is read, which must be copied before
// it reaches anyone who may keep it. Anything else is in memory of its own, as from
// decodeData.
func (c *BanConn) decodeDataView(wm wireMsg) (data []byte, lent bool, err error) {
	d := wm.Data
	if len(d) < 2 || c.ownBody || d[0] != tagRaw || !c.fastRecv.Load() || (c.cfg.aead != nil && !wm.NoEncrypt) {
		data, err = c.decodeData(wm)
		return data, false, err
	}
	limit := c.cfg.maxInflated
	if !c.authed.Load() {
		limit = min(limit, maxHandshakeBytes)
	}
	if len(d)-1 > limit {
		return nil, false, fmt.Errorf("%w: more than %d bytes", ErrInflatedTooLarge, limit)
	}
	return d[1:len(d):len(d)], true, nil
}

// route delivers one decoded message. readWire has refused anything but the hello
// from a peer that has not authenticated.
func (c *BanConn) route(msg *IOMsgRaw) {
	if key, ok := strings.CutPrefix(msg.Action, resPrefix); ok {
		c.waits.deliver(key, msg.Data, false)
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
	if h, ok := c.handlers.Load().find(msg.Action); ok {
		c.handle(msg, h)
		return
	}
	c.push(msg)
}

// handle hands msg to its handler h: on the read loop for an inline one, through the
// inbox (push) for any other.
func (c *BanConn) handle(msg *IOMsgRaw, h handler) {
	if h.inline {
		c.run(msg, h.cb)
		return
	}
	c.push(msg)
}

// refuseUnauthenticated is the end of a connection that acted before authenticating:
// the attempt counts against its address (authThrottle), and the log says so at most
// once an interval for the whole server.
//
// It is no failure when the connection is already closing (a refusal closed it, and
// this frame was buffered behind the hello), and on a server without a token only a
// follower requires the hello (follow.go): a first frame other than a hello, a banbot
// peer's, is answered not_leader; if the server has become the leader since, the peer
// is served (nil).
func (c *BanConn) refuseUnauthenticated(action string) error {
	s := c.server
	if s == nil {
		return fmt.Errorf("%w: action %q before authentication", ErrAuthFailed, action)
	}
	if c.closing() {
		return ErrConnClosed
	}
	if s.cfg.token == "" {
		if leader, follower := s.leaderElsewhere(); follower {
			return c.refuseNotLeader(leader)
		}
		c.authed.Store(true)
		return nil
	}
	s.authFailed(c, "action before authentication", "action", action)
	return fmt.Errorf("%w: action %q before authentication", ErrAuthFailed, action)
}
