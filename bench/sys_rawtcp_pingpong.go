package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
)

// pingPong is rawtcp-pingpong: one caller, one TCP connection, strict
// request/reply alternation with 4-byte length framing, one write syscall
// per message each way. It is the latency floor of this machine's loopback.
//
// With handoff set it is rawtcp-handoff: the same, except that a reader
// goroutine reads each reply and hands it to the caller over a channel, as a
// connection shared by many callers must. The difference between the two is
// the price of one goroutine handoff on this machine.
type pingPong struct {
	handoff bool
	srv     *tcpServer
	conn    net.Conn
	caller  *pingPongCaller
}

func newPingPong(handoff bool) *pingPong { return &pingPong{handoff: handoff} }

// Supports allows exactly one caller: ping-pong has no concurrency by
// design.
func (p *pingPong) Supports(c Case) error {
	if c.Callers != 1 {
		return errors.New("strict ping-pong runs with exactly one caller")
	}
	return nil
}

// Start starts the echo server and dials the one client connection.
func (p *pingPong) Start(ctx context.Context) error {
	srv, err := startTCPServer(servePingPong)
	if err != nil {
		return err
	}
	p.srv = srv
	conn, err := dialLoopback(ctx, srv.Addr())
	if err != nil {
		return err
	}
	p.conn = conn
	return nil
}

// NewCaller returns the one Caller; asking for a second one is an error.
func (p *pingPong) NewCaller() (Caller, error) {
	if p.conn == nil {
		return nil, errors.New("rawtcp-pingpong: not started")
	}
	if p.caller != nil {
		return nil, errors.New("rawtcp-pingpong: supports exactly one caller")
	}
	p.caller = &pingPongCaller{
		conn: p.conn,
		r:    bufio.NewReaderSize(p.conn, 64<<10),
		cc:   connCanceller{conn: p.conn},
	}
	if p.handoff {
		p.caller.replies = make(chan readReply, 1)
		go p.caller.readReplies()
	}
	return p.caller, nil
}

// Close closes the client connection and the server.
func (p *pingPong) Close() error {
	var errs []error
	if p.caller != nil {
		p.caller.cc.release()
	}
	if p.conn != nil {
		p.conn.Close()
	}
	if p.srv != nil {
		errs = append(errs, p.srv.Close())
	}
	return errors.Join(errs...)
}

// pingPongCaller sends one framed request and reads its reply; it reuses
// one write and one reply buffer.
type pingPongCaller struct {
	conn  net.Conn
	r     *bufio.Reader
	wbuf  []byte
	reply []byte
	hdr   [lenHeader]byte
	cc    connCanceller

	replies chan readReply // rawtcp-handoff: what the reader goroutine read
}

// readReply is one reply (or read error) handed from the reader goroutine.
type readReply struct {
	body []byte
	err  error
}

// Call writes header and payload with one syscall and reads the echo.
func (c *pingPongCaller) Call(ctx context.Context, payload []byte) ([]byte, error) {
	if c.replies == nil {
		// Not with a reader goroutine: it would fail on the deadline set when a
		// window's context ends, though no call of it was waiting.
		c.cc.watch(ctx)
	}
	c.wbuf = binary.LittleEndian.AppendUint32(c.wbuf[:0], uint32(len(payload)))
	c.wbuf = append(c.wbuf, payload...)
	if _, err := c.conn.Write(c.wbuf); err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("write request: %w", err))
	}
	if c.replies != nil {
		select {
		case r := <-c.replies:
			return r.body, r.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	n, err := readLen(c.r, c.hdr[:])
	if err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("read reply header: %w", err))
	}
	c.reply, err = readBody(c.r, c.reply, n)
	if err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("read reply: %w", err))
	}
	return c.reply, nil
}

// readReplies is rawtcp-handoff's reader goroutine. It reuses one reply buffer:
// in strict ping-pong the next reply only comes after the caller has used
// this one and sent its next request. It ends when the connection fails.
func (c *pingPongCaller) readReplies() {
	var buf []byte
	for {
		n, err := readLen(c.r, c.hdr[:])
		if err == nil {
			buf, err = readBody(c.r, buf, n)
		}
		if err != nil {
			c.replies <- readReply{err: fmt.Errorf("read reply: %w", err)}
			return
		}
		c.replies <- readReply{body: buf}
	}
}

// servePingPong echoes framed messages on c until it fails or closes,
// reading into a buffer that has room for the header in front so that the
// reply goes out in one write.
func servePingPong(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	var hdr [lenHeader]byte
	var buf []byte
	for {
		n, err := readLen(r, hdr[:])
		if err != nil {
			return
		}
		if cap(buf) < lenHeader+n {
			buf = make([]byte, lenHeader+n)
		}
		buf = buf[:lenHeader+n]
		copy(buf, hdr[:])
		if _, err := readBody(r, buf[lenHeader:], n); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// ctxOr returns ctx's error, wrapping err, if ctx is done (the transport
// error was caused by the cancellation), and err otherwise.
func ctxOr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
