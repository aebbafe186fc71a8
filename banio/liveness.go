package banio

import "time"

// What a connection can tell a status page about its peer, read without disturbing
// the heartbeat's own bookkeeping (silentFor).

// MessagesRead counts the messages decoded from the peer since the connection was
// made: pings, replies, anything. A caller that samples it on a ticker learns when the
// peer last spoke, to the ticker's precision, without the read loop reading the clock
// per frame.
func (c *BanConn) MessagesRead() uint64 { return c.reads.Load() }

// Created is when the connection was made (accepted or first dialled).
func (c *BanConn) Created() time.Time { return c.created }
