package banio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unsafe"
)

// IOMsg is a message to send. Data is marshalled as banbot does: a string or []byte
// travels as-is, nil travels as no data at all, anything else as JSON (without HTML
// escaping, as banbot's encoder writes it).
type IOMsg struct {
	Action    string // what the receiver routes on (Listen, Broadcast subscriptions)
	Data      any    // string/[]byte as-is, nil as no data, anything else as JSON
	NoEncrypt bool   // send Data unencrypted even when an AES key is configured
}

// IOMsgRaw is a received message, or one whose Data is already marshalled. Data is
// decrypted and decompressed: exactly the bytes the sender marshalled.
type IOMsgRaw struct {
	Action    string // the message's action
	Data      []byte // the payload as the sender marshalled it; empty when none was sent
	NoEncrypt bool   // the sender sent Data unencrypted
}

// ConnCB handles one received message. It runs on the connection's handler goroutine,
// one message at a time in arrival order; a handler that wants concurrency starts its
// own goroutine. msg and msg.Data belong to the handler.
type ConnCB = func(msg *IOMsgRaw)

// Parts is message data in two pieces, sent as their concatenation without building
// it first: a small header in front of a large payload, say, without copying the
// payload into a new slice.
type Parts struct {
	Head, Body []byte
}

// marshalData turns IOMsg.Data into bytes: data, followed by tail for Parts. present is
// false only for a nil Data, which travels as an absent field.
func marshalData(v any) (data, tail []byte, present bool, err error) {
	switch d := v.(type) {
	case nil:
		return nil, nil, false, nil
	case string:
		// Read-only view of the string: the bytes are only compressed or copied.
		return unsafe.Slice(unsafe.StringData(d), len(d)), nil, true, nil
	case []byte:
		return d, nil, true, nil
	case Parts:
		return d.Head, d.Body, true, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, nil, false, fmt.Errorf("banio: marshal %T: %w", v, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil, true, nil
}
