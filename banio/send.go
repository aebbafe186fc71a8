package banio

import (
	"fmt"
	"sync"
)

// Encoding a message for the wire: marshal (message.go) → compress (compress.go) →
// encrypt (crypto.go) → frame (codec.go), into pooled buffers.

// bufPool holds frame and scratch buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= maxKeptBuffer {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

// WriteMsg marshals and sends msg. It is safe from any goroutine. It returns once the
// frame is queued for the connection's writer goroutine (which writes everything queued
// in one syscall); it waits (up to the write timeout) only when the write queue is
// full, and fails with ErrConnClosed on a closed connection.
func (c *BanConn) WriteMsg(msg *IOMsg) error {
	return c.sendData(msg.Action, msg.Data, msg.NoEncrypt, writeQueued)
}

// WriteMsgNoBlock is WriteMsg for callers that must not wait, such as a read loop: it
// never waits for room in a full write queue (see SendWaitResNoBlock, whose rules it
// shares), and never writes to the socket itself: the frame is appended and leaves
// with the others deferred by the current read batches, once they end (or at once
// when no read loop is in a batch). Frames that had to wait may go out after frames
// sent later.
func (c *BanConn) WriteMsgNoBlock(msg *IOMsg) error {
	return c.sendData(msg.Action, msg.Data, msg.NoEncrypt, writeDefer|writeSpill)
}

// WriteParts is WriteMsg for a message whose Data is Parts{Head: head, Body: body},
// without putting them in an interface: that costs an allocation, which a sender of one
// message per request (a master sending jobs) pays per request.
func (c *BanConn) WriteParts(action string, head, body []byte) error {
	return c.send(action, head, body, true, false, writeQueued)
}

// WritePartsNoBlock is WriteMsgNoBlock for a message whose Data is Parts (see
// WriteParts).
func (c *BanConn) WritePartsNoBlock(action string, head, body []byte) error {
	return c.send(action, head, body, true, false, writeDefer|writeSpill)
}

// sendData marshals v (as IOMsg.Data) and sends it.
func (c *BanConn) sendData(action string, v any, noEncrypt bool, mode writeMode) error {
	data, tail, present, err := marshalData(v)
	if err != nil {
		return err
	}
	return c.send(action, data, tail, present, noEncrypt, mode)
}

// Write sends a message whose Data is already marshalled (it is compressed and
// encrypted like WriteMsg's). A nil Data travels as no data.
func (c *BanConn) Write(msg *IOMsgRaw) error {
	return c.send(msg.Action, msg.Data, nil, msg.Data != nil, msg.NoEncrypt, writeQueued)
}

// send encodes and enqueues one message, whose data is data followed by tail.
func (c *BanConn) send(action string, data, tail []byte, present, noEncrypt bool, mode writeMode) error {
	if c.IsClosed() {
		return ErrConnClosed
	}
	if c.client != nil {
		c.client.trackSubscriptions(action, data)
	}
	codec := c.sendCodec()
	if present && sendsRaw(c.cfg, len(data)+len(tail), noEncrypt, codec) {
		// Encoded by the writer, into its queue (outFrame).
		f := rawFrame(action, data, tail, noEncrypt)
		if err := c.checkSize(f.size()); err != nil {
			return err
		}
		return c.out.writeFrame(&f, mode)
	}
	buf := getBuf()
	defer putBuf(buf)
	frame, err := encodeFrameWith((*buf)[:0], c.cfg, action, data, tail, present, noEncrypt, codec)
	*buf = frame
	if err != nil {
		return err
	}
	if err := c.peerAccepts(len(frame)); err != nil {
		return err
	}
	return c.out.write(frame, mode)
}

// wireCodec is how a connection encodes the payloads it sends.
type wireCodec uint8

const (
	wireZlib wireCodec = iota // banbot's format: until the peer accepts the fast codec
	wireFast                  // tagged, raw below rawBelow and s2 above
	wireRaw                   // tagged, raw at any size: the peer is on this host
)

// sendCodec is the codec for this connection's next frame. Between banfleet peers on
// one host (a loopback address), payloads go raw at any size: there the network is a
// memory copy, cheaper than compressing, and s2 decodes highly compressible data at
// only a few GB/s.
func (c *BanConn) sendCodec() wireCodec {
	switch {
	case !c.fastSend.Load():
		return wireZlib
	case c.loopback:
		return wireRaw
	default:
		return wireFast
	}
}

// outFrame is a frame for the writer to append: either encoded already (whole), or a
// message whose payload goes raw (no compression, no encryption), whose frame the
// writer encodes straight into its pending buffer so that the payload is copied once
// on its way to the socket, not twice (into a frame, then the frame into the queue): at
// 64 KiB that copy was a quarter of a round trip's memmove.
type outFrame struct {
	whole []byte // the encoded frame; nil for a raw message

	action     string
	data, tail []byte // the payload, data followed by tail
	noEncrypt  bool
}

// rawFrame describes the frame of a message whose payload goes raw.
func rawFrame(action string, data, tail []byte, noEncrypt bool) outFrame {
	return outFrame{action: action, data: data, tail: tail, noEncrypt: noEncrypt}
}

// size is the frame's length on the wire.
func (f *outFrame) size() int {
	if f.whole != nil {
		return len(f.whole)
	}
	v := valueLen(len(f.action), 1+len(f.data)+len(f.tail), f.noEncrypt)
	return 4 + len(typeDef) + uintLen(uint64(v)) + v
}

// appendTo appends the frame to dst.
func (f *outFrame) appendTo(dst []byte) []byte {
	if f.whole != nil {
		return append(dst, f.whole...)
	}
	return appendRawFrame(dst, f.action, f.data, f.tail, f.noEncrypt)
}

// appendRawFrame appends the frame of a message whose payload (data then tail) goes raw.
func appendRawFrame(dst []byte, action string, data, tail []byte, noEncrypt bool) []byte {
	n := 1 + len(data) + len(tail)
	dst = appendFrameHead(dst, action, n, noEncrypt)
	dst = append(dst, tagRaw)
	dst = append(dst, data...)
	dst = append(dst, tail...)
	return appendFrameTail(dst, action, n, noEncrypt)
}

// sendsRaw reports whether a message's payload goes raw: codec permitting, never
// when it is encrypted.
func sendsRaw(cfg *config, n int, noEncrypt bool, codec wireCodec) bool {
	encrypt := cfg.aead != nil && !noEncrypt
	return codec != wireZlib && !encrypt && (codec == wireRaw || n < rawBelow)
}

// encodeFrameWith appends the frame for one message, whose data is data followed by
// tail, to dst, encoded for cfg's key and the given codec. Broadcast shares it to
// encode once for many connections.
func encodeFrameWith(dst []byte, cfg *config, action string, data, tail []byte, present, noEncrypt bool, codec wireCodec) ([]byte, error) {
	start := len(dst)
	if !present {
		dst = appendFrame(dst, action, nil, noEncrypt)
		return checkFrameSize(dst, start, cfg)
	}
	encrypt := cfg.aead != nil && !noEncrypt
	if sendsRaw(cfg, len(data)+len(tail), noEncrypt, codec) {
		// Raw payload between banfleet peers: written straight into the frame.
		return checkFrameSize(appendRawFrame(dst, action, data, tail, noEncrypt), start, cfg)
	}
	if len(tail) > 0 {
		// The compressors take one slice: join the two in a pooled buffer.
		joined := getBuf()
		defer putBuf(joined)
		*joined = append(append((*joined)[:0], data...), tail...)
		data = *joined
	}
	scratch := getBuf()
	defer putBuf(scratch)
	comp := (*scratch)[:0]
	switch codec {
	case wireZlib:
		comp = appendZlib(comp, data)
	case wireRaw:
		comp = append(append(comp, tagRaw), data...)
	default:
		comp = appendFast(comp, data)
	}
	*scratch = comp
	n := len(comp)
	if encrypt {
		n += gcmOverhead
	}
	dst = appendFrameHead(dst, action, n, noEncrypt)
	if encrypt {
		dst = appendSeal(dst, cfg.aead, comp)
	} else {
		dst = append(dst, comp...)
	}
	dst = appendFrameTail(dst, action, n, noEncrypt)
	return checkFrameSize(dst, start, cfg)
}

// checkSize fails a frame of size bytes (its length prefix included) that this end or
// its peer does not accept.
func (c *BanConn) checkSize(size int) error {
	if err := checkBodySize(size-4, c.cfg); err != nil {
		return err
	}
	return c.peerAccepts(size)
}

// checkFrameSize fails the frame that dst holds from start on if it is larger than cfg
// allows, and takes it back out of dst.
func checkFrameSize(dst []byte, start int, cfg *config) ([]byte, error) {
	if err := checkBodySize(len(dst)-start-4, cfg); err != nil {
		return dst[:start], err
	}
	return dst, nil
}

func checkBodySize(body int, cfg *config) error {
	if body > cfg.maxFrame {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, body, cfg.maxFrame)
	}
	return nil
}

// peerAccepts fails a frame of size bytes larger than the peer accepts: sent, it would
// make the peer cut the connection, and everything else on it would be lost with it.
func (c *BanConn) peerAccepts(size int) error {
	if limit := c.peerMaxFrame.Load(); limit > 0 && int64(size-4) > limit {
		return fmt.Errorf("%w: %d bytes, the peer accepts at most %d (give every peer the same WithMaxFrameSize)", ErrFrameTooLarge, size-4, limit)
	}
	return nil
}
