// Package banio is banfleet's transport: framed messages over TCP between one server
// and many clients, wire-compatible with BanIO, the server/client exchange of the
// banbot trading bot. A banbot process can talk to a banio server or client as if it
// were another banbot; two banfleet peers additionally negotiate a faster payload
// codec and may authenticate with a shared token. The byte-level protocol is in
// docs/protocol.md; this comment explains how the package works.
//
// # Messages and frames
//
// A message has an Action (a routing string), Data and a NoEncrypt flag. Callers send
// an IOMsg, whose Data is marshalled as banbot does: a string or []byte as-is, nil as
// no data at all, anything else as JSON. Handlers receive an IOMsgRaw, whose Data is
// exactly the bytes the sender marshalled.
//
// On the wire each message is one frame: a 4-byte little-endian length, then a gob
// stream holding the type definition of banbot's IOMsgRaw struct and one value of it.
// The Data carried in that value is a zlib stream of the payload (banbot requires it),
// AES-GCM encrypted when a key is configured and NoEncrypt is false. banio writes the
// constant type definition from bytes and encodes the value by hand (codec.go), and
// parses the common case by hand on the way in, falling back to encoding/gob for
// anything else, so that frames from any conforming encoder are accepted. Small
// payloads are written as zlib stored blocks (no deflate work, still valid zlib);
// compressors and decompressors are pooled (compress.go).
//
// # Roles
//
// A ServerIO accepts connections (Serve, RunForever), keeps a key/value store that
// clients reach with the built-in actions onGetVal and onSetVal, grants atomic locks
// with a TTL to waiters in order of arrival (ClientIO.Lock), and broadcasts: Broadcast
// sends a message to every connection that subscribed to exactly its action. A
// ClientIO dials a server and keeps the connection alive across failures; given the
// addresses of a cluster's masters ("a:1,b:2,c:3") it dials them in turn and follows
// a follower's not_leader answer to the leader (ServerIO.SetNotLeader). Both ends
// of a connection are a BanConn, and both can send any action at any time:
// request/response goes either way.
//
// # The read path
//
// Each connection has one read loop (RunForever; the caller's goroutine). It reads a
// frame, checks the announced length against the frame limit before allocating,
// decodes the gob value, decrypts, decompresses under the inflated-size limit, and
// routes the message:
//
//   - an action "__res__<key>" is a result for a pending wait: the read loop hands it
//     to the wait itself, so results never queue behind a slow handler;
//   - the handshake actions (__hello__, __welcome__) are handled on the read loop too,
//     so that a connection is authenticated before its next frame is looked at;
//   - everything else is appended to the connection's inbox and the read loop goes
//     back to reading.
//
// A frame whose bytes were read but cannot be decoded (bad gob, bad zlib, wrong AES
// key, too large once inflated) is logged (rate-limited) and skipped: the length
// header keeps the stream in sync. A length above the frame limit, or a stream that
// ends inside a frame, cannot be resynchronised: that one connection is closed.
//
// # The dispatch path
//
// One handler goroutine per connection (started on first need) takes messages from
// the inbox and runs their handlers one at a time, in arrival order. Handlers are
// found with Listen's table: an exact action match wins, else the longest registered
// prefix. A handler that wants concurrency starts its own goroutine; a panicking
// handler is logged and the connection carries on. When the inbox holds more than
// WithMaxInboxBytes the read loop waits for the handlers, which pushes back on the
// peer through TCP. A handler registered with ListenInline instead runs on the read
// loop as its message arrives, skipping the handoff; it must never block.
// ListenInlineView's handler is lent the message as well: its data may be a view of the
// read buffer, valid until the handler returns, which saves copying it out first
// (package worker starts jobs with one, copying only their payloads). On a ClientIO, an
// inline handler may run a task on the read loop that might block after all
// (RunMovable, movable.go): should it still run after 200 µs, the reading moves to a new
// goroutine and the task finishes where it is; package worker runs short jobs that way,
// which saves them a goroutine hand-off each. Built-in handlers answer ping with pong (value + 1,
// unencrypted) on the read loop, so that a busy handler never delays a heartbeat;
// they record subscribe/unsubscribe in the connection's data (GetData), in order with
// the other messages, and on the server serve the key/value store and locks.
//
// # The write path
//
// Every frame of a connection goes through its writer (writer.go), the only thing that
// writes the connection's socket. The frame is encoded on the sender's goroutine (so
// compression and encryption run in parallel), then appended to the writer's pending
// buffer; the writer goroutine writes everything pending in one syscall, and while it
// writes, the frames senders append meanwhile wait to leave together in the next one.
// One rule says when the writer goroutine is signalled:
//
//   - WriteMsgNoBlock and SendWaitResNoBlock, the calls for a read loop's handlers and
//     wait callbacks: the frame is only appended, and the connection is noted in a
//     process-wide deferred set. Each read loop counts itself "in a batch" from the
//     read that returned a frame until its buffered reader holds no complete frame; at
//     the end of a batch it yields once and signals the writer of every connection in
//     the set (flush.go). A burst of requests read together thus leaves as one write
//     per destination, the way nats-server flushes its readers' deliveries. A sender
//     that finds no read loop in a batch signals at once, so a frame deferred by any
//     other goroutine is never left behind.
//   - Everything else (WriteMsg, Write, SendWaitRes from any goroutine, Broadcast to
//     each subscriber in call order): appended, and the writer goroutine signalled at
//     once.
//
// Senders never write the socket themselves, except heartbeats, the welcome and a
// client's first hello on an idle socket, so that these do not start the writer
// goroutine of an idle connection: the writer goroutine is started on first need and
// ends when a heartbeat interval passes with nothing for it, so an idle connection
// holds only its read loop. (An inline fast path for a caller finding the socket idle
// was measured and did not pay: see writer's doc comment.) The pending buffer is
// bounded (WithMaxPendingBytes): WriteMsg waits for room up to the write timeout and
// then fails with ErrTimeout; the NoBlock calls never wait (a goroutine of its own
// waits, with a copy, for at most another bound's worth of such frames), and Broadcast
// never waits: past those bounds a server-side peer is cut as a slow consumer
// (ErrSlowConsumer, counted by ServerIO.SlowConsumers). Every socket write has the
// write timeout as its deadline, renewed for each 256 KiB, so a large frame over a
// slow link succeeds while a stalled peer does not hold a write for ever; Close writes
// what is pending within a one-second grace. Parts sends a header and a payload as one
// message without joining them first.
//
// # Waits
//
// Request/response is by key. SetWait registers a buffered channel under a key ("" for
// a fresh UUID-shaped one); the request carries the key (in its action or its data);
// the responder calls SendWaitRes(key, data), which sends "__res__"+key; WaitResult
// takes the result. WaitResult ends with the result, ctx's error, ErrTimeout,
// ErrWaitOverflow if more results came than the wait could hold, or ErrConnClosed the
// moment the connection (for a client: the socket the request went out on) is lost.
// SetWaitFunc hands the result to a callback on the read loop instead, for callers
// with many requests in flight that should not park a goroutine for each;
// SetWaitFuncView lends it, as ListenInlineView does, and SetWaiterView does the same
// for a value that is its own callback (a Waiter: a struct per request, with no method
// value to allocate). SendWaitResParts answers with data
// in two pieces without putting them in an interface, as WriteParts sends them.
//
// # Reconnect and heartbeats
//
// A client pings every heartbeat interval and treats a server it has heard nothing
// from for the heartbeat timeout as gone (silence is checked on the heartbeat ticks,
// so it is noticed within one interval after the timeout). When its socket fails it fails its pending
// waits, keeps frames written meanwhile in its (bounded) pending buffer, and redials
// with jittered exponential backoff (WithReconnectBackoff). On the new socket it first
// says hello and re-sends its subscriptions, then flushes what was queued, then calls
// ReInitConn. A server closes connections silent for the heartbeat timeout. Close is
// final for both: a closed client does not reconnect.
//
// # Codec handshake
//
// A client's first frame is "__hello__" offering the fast codec (and carrying its
// token, if any). A banfleet server answers "__welcome__" and from then on both sides
// may send payloads as a tag byte followed by raw bytes (0x00) or an s2 block (0x01);
// no zlib stream can start with either byte, so a receiver tells them apart. Peers on
// one host (a loopback address) send everything raw: copying memory is cheaper there
// than compressing. A banbot
// server never answers the hello and a banbot client never sends one, so banbot peers
// always get zlib. WithCodec(CodecZlib) turns the negotiation off.
//
// # Security
//
// WithAESKey enables banbot's AES-GCM encryption of Data (hex keys of 32, 48 or 64
// digits; an invalid key is ErrInvalidAESKey, not silence). Only Data is protected;
// Action and NoEncrypt travel in clear, so for untrusted networks use WithTLS. WithToken
// sets a shared secret: a server with a token closes any connection that sends
// anything but a hello with the right token, and drops connections that do not
// authenticate within the handshake timeout.
//
// # Limits
//
// Frame size (WithMaxFrameSize, 64 MiB), inflated size (WithMaxInflatedSize, 256 MiB),
// write queue and inbox per connection (64 MiB each), subscriptions per connection,
// pending waits per connection, and key/value count and sizes (WithLimits) are all
// bounded, and so are the bytes of what a peer makes the other side keep: subscribed
// tags per connection (WithSubscriptionBudget), the server's key/value store, locks
// included (WithMaxKVBytes), and queued Lock requests (WithLockWaiters); see the
// Default constants, and KVStats and DataStats for what is held. A built-in action's
// payload too large to be valid is refused before it is parsed. A connection's
// goroutines (read loop, handler goroutine, writer goroutine) all end when it closes.
package banio
