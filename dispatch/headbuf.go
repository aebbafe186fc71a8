package dispatch

import (
	"sync"

	"github.com/banfleet/banfleet/protocol"
)

// headBufs are scratch buffers for the envelope headers the master and a Client send
// (a job's, a submission's). banio copies a message's data into its frame before
// WriteMsg and WriteMsgNoBlock return, so a header's buffer is free again once its
// message is sent: one buffer of HeaderRoom per message was a tenth of the bytes a job
// allocated.
var headBufs = sync.Pool{New: func() any { b := make([]byte, 0, protocol.HeaderRoom); return &b }}

func getHead() *[]byte { return headBufs.Get().(*[]byte) }

// putHead returns a header buffer once its message is sent; one an unusual header
// (a large trace context) grew is dropped.
func putHead(b *[]byte, head []byte) {
	if cap(head) <= 4*protocol.HeaderRoom {
		*b = head[:0]
		headBufs.Put(b)
	}
}

// smallPayload: a payload up to this size is sent copied behind its header in a header
// buffer (Client.write); the buffer grows once to hold it and stays within what putHead
// keeps.
const smallPayload = 512
