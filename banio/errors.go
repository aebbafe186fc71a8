package banio

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error banio returns wraps one of these where one applies,
// so callers can test with errors.Is without parsing messages.
var (
	// ErrConnClosed: the connection (or, for a client, the socket a wait or write
	// depended on) is gone. Pending waits fail with it at once when their connection
	// drops; they never wait out their timeout.
	ErrConnClosed = errors.New("banio: connection closed")
	// ErrServerClosed is returned by ServerIO.Serve after ServerIO.Close.
	ErrServerClosed = errors.New("banio: server closed")
	// ErrTimeout: a WaitResult, write or handshake ran out of time.
	ErrTimeout = errors.New("banio: timeout")
	// ErrNoWait: WaitResult was called for a key that SetWait never registered
	// (or that has already been consumed).
	ErrNoWait = errors.New("banio: no wait registered for key")
	// ErrWaitOverflow: more results arrived for a wait key than its buffer holds.
	ErrWaitOverflow = errors.New("banio: wait buffer overflow")
	// ErrFrameTooLarge: a peer announced a frame above the configured maximum. The
	// stream cannot be resynchronised without reading the body, so the connection
	// is closed.
	ErrFrameTooLarge = errors.New("banio: frame too large")
	// ErrInflatedTooLarge: a payload decompresses to more than the configured maximum
	// (a "zip bomb"); the message is dropped.
	ErrInflatedTooLarge = errors.New("banio: inflated payload too large")
	// ErrBadMessage: a frame was read intact but could not be decoded (gob, zlib,
	// AES). The message is skipped and the connection stays up.
	ErrBadMessage = errors.New("banio: bad message")
	// ErrSlowConsumer: a connection's write queue passed its bound during a
	// Broadcast; the connection was cut so that it cannot stall the others.
	ErrSlowConsumer = errors.New("banio: slow consumer")
	// ErrInvalidAESKey: the key given to WithAESKey is not 32, 48 or 64 hex digits.
	ErrInvalidAESKey = errors.New("banio: invalid AES key")
	// ErrAuthFailed: the server refused this client's token, or a peer tried to act
	// before authenticating.
	ErrAuthFailed = errors.New("banio: authentication failed")
	// ErrRefused: the server refused the connection: it is at its connection limit,
	// or this host failed to authenticate too often and is barred for a while. A
	// running ClientIO retries with its reconnect backoff; NewClientIO with a token
	// returns it.
	ErrRefused = errors.New("banio: connection refused by the server")
	// ErrNotLeader: the server is a follower of a cluster of masters
	// (ServerIO.SetNotLeader) and refused the connection; a *NotLeaderError says where
	// the leader is. It is a refusal (errors.Is(ErrNotLeader, ErrRefused)): a ClientIO
	// given several addresses dials the leader next, then the others, then backs off.
	ErrNotLeader = fmt.Errorf("%w: not the leader", ErrRefused)
	// ErrLimit: a configured bound (subscriptions, pending waits, key/value sizes)
	// would be exceeded.
	ErrLimit = errors.New("banio: limit exceeded")
	// ErrNotLockOwner: Unlock was called with a token that does not hold the lock.
	ErrNotLockOwner = errors.New("banio: lock not held by this token")
)

// ErrAuthRequired: the server requires a token and this client gave none
// (WithToken). It wraps ErrAuthFailed, so errors.Is(err, ErrAuthFailed) holds for it
// too.
var ErrAuthRequired error = authRequiredError{}

type authRequiredError struct{}

func (authRequiredError) Error() string { return "banio: authentication required" }
func (authRequiredError) Unwrap() error { return ErrAuthFailed }
