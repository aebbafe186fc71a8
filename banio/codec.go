package banio

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"unsafe"
)

// The body of a frame is one gob stream made by a fresh encoder: the definition of the
// IOMsgRaw struct type, then one value of it (docs/protocol.md). banbot's decoder is
// fresh per frame, so the definition must be repeated in every frame. Since it never
// changes, banio writes it from this constant and encodes the value by hand, which
// costs a few appends instead of a gob.Encoder per frame.

// typeDef is the gob type-definition message for IOMsgRaw with type id 64, including its
// own length byte (0x37 = 55 bytes follow).
var typeDef = []byte{
	0x37, 0x7f, 0x03, 0x01, 0x01, 0x08, 'I', 'O', 'M', 's', 'g', 'R', 'a', 'w', 0x01, 0xff,
	0x80, 0x00, 0x01, 0x03, 0x01, 0x06, 'A', 'c', 't', 'i', 'o', 'n', 0x01, 0x0c, 0x00, 0x01,
	0x04, 'D', 'a', 't', 'a', 0x01, 0x0a, 0x00, 0x01, 0x09, 'N', 'o', 'E', 'n', 'c', 'r', 'y',
	'p', 't', 0x01, 0x02, 0x00, 0x00, 0x00,
}

// gob field numbers of IOMsgRaw.
const (
	fieldAction    = 0
	fieldData      = 1
	fieldNoEncrypt = 2
)

// uintLen is the length of x in gob's unsigned integer encoding.
func uintLen(x uint64) int {
	if x < 0x80 {
		return 1
	}
	n := 1
	for ; x > 0; x >>= 8 {
		n++
	}
	return n
}

// appendUint appends x in gob's unsigned integer encoding: one byte below 128, else a
// negated byte count followed by the big-endian bytes.
func appendUint(dst []byte, x uint64) []byte {
	if x < 0x80 {
		return append(dst, byte(x))
	}
	n := uintLen(x) - 1
	dst = append(dst, byte(-n))
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(x>>(8*i)))
	}
	return dst
}

// valueLen is the length of the gob value message payload (type id and fields)
// for the given field sizes.
func valueLen(actionLen, dataLen int, noEncrypt bool) int {
	n := 2 + 1 // type id 64 (FF 80) and the struct terminator
	if actionLen > 0 {
		n += 1 + uintLen(uint64(actionLen)) + actionLen
	}
	if dataLen > 0 {
		n += 1 + uintLen(uint64(dataLen)) + dataLen
	}
	if noEncrypt {
		n += 2
	}
	return n
}

// appendFrameHead appends the length header, the type definition and the value message
// up to (not including) the dataLen bytes of Data. The caller appends exactly dataLen
// bytes of Data and then calls appendFrameTail. Splitting the frame this way lets
// compression and encryption write straight into the frame buffer.
func appendFrameHead(dst []byte, action string, dataLen int, noEncrypt bool) []byte {
	v := valueLen(len(action), dataLen, noEncrypt)
	body := len(typeDef) + uintLen(uint64(v)) + v
	dst = append(dst, byte(body), byte(body>>8), byte(body>>16), byte(body>>24))
	dst = append(dst, typeDef...)
	dst = appendUint(dst, uint64(v))
	dst = append(dst, 0xff, 0x80) // type id 64
	last := -1
	if action != "" {
		dst = append(dst, byte(fieldAction-last))
		dst = appendUint(dst, uint64(len(action)))
		dst = append(dst, action...)
		last = fieldAction
	}
	if dataLen > 0 {
		dst = append(dst, byte(fieldData-last))
		dst = appendUint(dst, uint64(dataLen))
	}
	return dst
}

// appendFrameTail finishes what appendFrameHead started.
func appendFrameTail(dst []byte, action string, dataLen int, noEncrypt bool) []byte {
	if noEncrypt {
		last := -1
		if action != "" {
			last = fieldAction
		}
		if dataLen > 0 {
			last = fieldData
		}
		dst = append(dst, byte(fieldNoEncrypt-last), 1)
	}
	return append(dst, 0)
}

// appendFrame appends one complete frame carrying wire Data as it is.
func appendFrame(dst []byte, action string, data []byte, noEncrypt bool) []byte {
	dst = appendFrameHead(dst, action, len(data), noEncrypt)
	dst = append(dst, data...)
	return appendFrameTail(dst, action, len(data), noEncrypt)
}

// wireMsg is IOMsgRaw as it travels: Data is still compressed (and maybe encrypted).
// Action and Data may alias the frame buffer; decodeBody's caller must copy or consume
// them before the buffer is reused.
type wireMsg struct {
	Action    string
	Data      []byte
	NoEncrypt bool
}

// decodeBody decodes one frame body. The fast path handles frames whose type
// definition is banio's (and banbot's, in a fresh process) byte for byte; anything else
// goes through encoding/gob with a fresh decoder, exactly as banbot reads.
func decodeBody(body []byte) (wireMsg, error) {
	if m, ok := decodeFast(body); ok {
		return m, nil
	}
	var m wireMsg
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(&m); err != nil {
		return wireMsg{}, fmt.Errorf("%w: gob: %v", ErrBadMessage, err)
	}
	return m, nil
}

// decodeFast parses the value message after the known type definition. It reports
// false whenever the bytes are anything but the simple well-formed case; the gob
// fallback then gives the authoritative answer or error.
func decodeFast(body []byte) (wireMsg, bool) {
	var m wireMsg
	if !bytes.HasPrefix(body, typeDef) {
		return m, false
	}
	p := body[len(typeDef):]
	n, p, ok := readUint(p)
	if !ok || n > uint64(len(p)) || n < 3 {
		return m, false
	}
	p = p[:n]
	if p[0] != 0xff || p[1] != 0x80 {
		return m, false
	}
	p = p[2:]
	field := -1
	for {
		var delta uint64
		delta, p, ok = readUint(p)
		if !ok {
			return m, false
		}
		if delta == 0 {
			return m, len(p) == 0
		}
		if delta > 3 {
			return m, false
		}
		field += int(delta)
		switch field {
		case fieldAction, fieldData:
			var l uint64
			l, p, ok = readUint(p)
			if !ok || l > uint64(len(p)) {
				return m, false
			}
			if field == fieldAction {
				if l > 0 { // a view of the body, not a copy (see wireMsg)
					m.Action = unsafe.String(&p[0], l)
				}
			} else {
				m.Data = p[:l:l]
			}
			p = p[l:]
		case fieldNoEncrypt:
			if len(p) == 0 || p[0] > 1 {
				return m, false
			}
			m.NoEncrypt = p[0] == 1
			p = p[1:]
		default:
			return m, false
		}
	}
}

// readUint reads one gob unsigned integer.
func readUint(p []byte) (uint64, []byte, bool) {
	if len(p) == 0 {
		return 0, p, false
	}
	b := p[0]
	if b < 0x80 {
		return uint64(b), p[1:], true
	}
	n := 256 - int(b) // the negated byte count; 0x80 would overflow an int8 negation
	if n > 8 || n+1 > len(p) {
		return 0, p, false
	}
	var x uint64
	for _, c := range p[1 : n+1] {
		x = x<<8 | uint64(c)
	}
	return x, p[n+1:], true
}
