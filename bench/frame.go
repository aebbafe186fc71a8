package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// The raw TCP systems frame every message as a 4-byte little-endian payload
// length, followed (rawtcp-mux only) by an 8-byte little-endian request id,
// followed by the payload.
const (
	lenHeader = 4
	muxHeader = lenHeader + 8
	// maxFrame bounds a payload read from the wire, so that a corrupt
	// length fails the connection instead of allocating gigabytes.
	maxFrame = 16 << 20
)

// readLen reads a 4-byte little-endian length and checks it against
// maxFrame.
func readLen(r *bufio.Reader, hdr []byte) (int, error) {
	if _, err := io.ReadFull(r, hdr[:lenHeader]); err != nil {
		return 0, err
	}
	n := binary.LittleEndian.Uint32(hdr)
	if n > maxFrame {
		return 0, fmt.Errorf("frame of %d bytes exceeds the %d byte limit", n, maxFrame)
	}
	return int(n), nil
}

// readMuxHeader reads a rawtcp-mux header and returns its payload length
// and request id.
func readMuxHeader(r *bufio.Reader, hdr *[muxHeader]byte) (n int, id uint64, err error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, err
	}
	ln := binary.LittleEndian.Uint32(hdr[:lenHeader])
	if ln > maxFrame {
		return 0, 0, fmt.Errorf("frame of %d bytes exceeds the %d byte limit", ln, maxFrame)
	}
	return int(ln), binary.LittleEndian.Uint64(hdr[lenHeader:]), nil
}

// appendMuxFrame appends one rawtcp-mux frame carrying id and p to buf.
func appendMuxFrame(buf []byte, id uint64, p []byte) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(p)))
	buf = binary.LittleEndian.AppendUint64(buf, id)
	return append(buf, p...)
}

// readBody reads exactly n bytes into buf, growing it if needed, and
// returns the filled slice.
func readBody(r *bufio.Reader, buf []byte, n int) ([]byte, error) {
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}
