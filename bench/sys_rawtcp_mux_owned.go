package main

import (
	"bufio"
	"net"
)

// rawtcp-mux-owned is rawtcp-mux doing the job banio-rtt does, with nothing of
// banfleet in it: the floor of a round trip whose receivers own what they
// receive. banio's API hands a Listen handler its message in memory of its own
// (the handler may keep it), runs that handler on a goroutine of its own in
// arrival order (a handler may block; the read loop must not), and hands
// WaitResult's caller a result it owns. rawtcp-mux does none of the three: its
// server echoes from its reused read buffer on the read loop, and its client
// reads each reply into the caller's reused buffer. Here each received payload
// is read straight into a fresh allocation (the cheapest way to hand over memory
// of its own: no copy, one zeroed allocation) on both sides, and the server's
// reader hands each request to one handler goroutine over a channel, which
// echoes it into the coalescing writer. The gap between rawtcp-mux and this is
// the price of the contract; the gap between this and banio-rtt is banio's.
func newMuxOwned() *mux { return &mux{owned: true} }

// muxRequest is one request handed from the server's reader to its handler.
type muxRequest struct {
	id   uint64
	body []byte
}

// handlerQueue bounds what the server's reader runs ahead of its handler, as
// banio's inbox does.
const handlerQueue = 1024

// serveMuxOwned is serveMux with banio's contract: each payload read into memory
// of its own and answered by a handler goroutine.
func serveMuxOwned(c net.Conn) {
	w := newCoalescer(c)
	requests := make(chan muxRequest, handlerQueue)
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		for req := range requests {
			if w.send(req.id, req.body) != nil {
				c.Close() // the reader's next read fails
			}
		}
	}()
	defer w.close()
	defer func() { <-handled }()
	defer close(requests)
	defer c.Close() // before w.close: unblocks a writer stuck in Write
	r := bufio.NewReaderSize(c, 64<<10)
	var hdr [muxHeader]byte
	for {
		n, id, err := readMuxHeader(r, &hdr)
		if err != nil {
			return
		}
		body, err := readBody(r, nil, n)
		if err != nil {
			return
		}
		requests <- muxRequest{id: id, body: body}
	}
}
