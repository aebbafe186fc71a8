package banio

import (
	"context"
	"crypto/cipher"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Defaults for every Option. They are chosen for a job fleet on a LAN: frames large
// enough for banbot's own 10 MiB test payloads with a wide margin, heartbeats that
// notice a dead peer within half a minute.
const (
	DefaultMaxFrameSize      = 64 << 20  // bytes on the wire per frame
	DefaultMaxInflatedSize   = 256 << 20 // bytes after decompression per message
	DefaultMaxPendingBytes   = 64 << 20  // bytes queued for writing per connection
	DefaultMaxInboxBytes     = 64 << 20  // bytes queued for handlers per connection
	DefaultWriteTimeout      = 10 * time.Second
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultHeartbeatTimeout  = 30 * time.Second
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultMaxSubscriptions  = 10000 // per connection
	DefaultMaxPendingWaits   = 1 << 20
	DefaultMaxKVKeys         = 1 << 20
	DefaultMaxKVKeyLen       = 1 << 10
	DefaultMaxKVValueLen     = 1 << 20
	// DefaultMaxConns caps the connections a server holds at once (lowered to fit the
	// process's file descriptor limit, keeping an eighth of it, at least 64, for the
	// rest: listeners, the status server, files).
	DefaultMaxConns = 10000
	// DefaultMaxConnsPerAddr caps the connections from one IP address: enough for a
	// host running many workers and callers, few enough that one host cannot take
	// the server's whole connection budget.
	DefaultMaxConnsPerAddr = 512
	// DefaultAuthPenalty and DefaultMaxAuthPenalty: each failed authentication from a
	// host bars it from connecting for a penalty that starts here and doubles per
	// failure, up to the maximum (4,300 guesses a second become one a minute).
	DefaultAuthPenalty    = 100 * time.Millisecond
	DefaultMaxAuthPenalty = time.Minute
)

// maxHandshakeBytes bounds what a peer that has not authenticated can make the server
// hold: one frame of at most this size (a hello is about 100 bytes), inflated to at
// most this size, for at most the handshake timeout.
const maxHandshakeBytes = 16 << 10

// Codec names the payload encoding a connection uses for what it sends.
type Codec int

const (
	// CodecAuto (the default) sends banbot's zlib format until the peer answers the
	// capability handshake, then switches to the fast codec. banbot peers never answer,
	// so they always get zlib.
	CodecAuto Codec = iota
	// CodecZlib never negotiates: every payload is a zlib stream, as banbot expects.
	CodecZlib
)

// Option configures a ClientIO or a ServerIO. The same options apply to both sides
// where they make sense; the rest are ignored on the side they do not concern.
type Option func(*config)

// config is the validated result of applying Options.
type config struct {
	aesKeyHex string
	aead      cipher.AEAD
	tls       *tls.Config
	token     string
	logger    *slog.Logger

	maxFrame    int
	maxInflated int
	maxPending  int
	maxInbox    int
	maxSubs     int
	maxWaits    int
	kvKeys      int
	kvKeyLen    int
	kvValueLen  int
	budgets     budgetConfig // retained-state byte budgets and the lock queue

	maxConns        int
	maxConnsPerHost int
	authPenalty     time.Duration
	maxAuthPenalty  time.Duration

	writeTimeout      time.Duration
	heartbeatInterval time.Duration
	heartbeatTimeout  time.Duration
	handshakeTimeout  time.Duration
	codec             Codec
	compressLocal     bool // s2 even to a peer on this host (tests of the s2 path)

	dial       func(ctx context.Context, addr string) (net.Conn, error)
	newBackoff func() backoff.BackOff
}

func defaultConfig() config {
	return config{
		logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		maxFrame:          DefaultMaxFrameSize,
		maxInflated:       DefaultMaxInflatedSize,
		maxPending:        DefaultMaxPendingBytes,
		maxInbox:          DefaultMaxInboxBytes,
		maxSubs:           DefaultMaxSubscriptions,
		maxWaits:          DefaultMaxPendingWaits,
		kvKeys:            DefaultMaxKVKeys,
		kvKeyLen:          DefaultMaxKVKeyLen,
		kvValueLen:        DefaultMaxKVValueLen,
		maxConns:          DefaultMaxConns,
		maxConnsPerHost:   DefaultMaxConnsPerAddr,
		authPenalty:       DefaultAuthPenalty,
		maxAuthPenalty:    DefaultMaxAuthPenalty,
		budgets:           defaultBudgets(),
		writeTimeout:      DefaultWriteTimeout,
		heartbeatInterval: DefaultHeartbeatInterval,
		heartbeatTimeout:  DefaultHeartbeatTimeout,
		handshakeTimeout:  DefaultHandshakeTimeout,
		newBackoff:        defaultBackoff,
	}
}

// defaultBackoff retries forever: 100 ms growing to 10 s, with ±50 % jitter so a fleet
// of workers does not reconnect in lockstep after a master restart.
func defaultBackoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 10 * time.Second
	b.RandomizationFactor = 0.5
	b.MaxElapsedTime = 0
	return b
}

// buildConfig applies opts and validates the result once, so that a bad option is
// reported by the constructor instead of by every send.
func buildConfig(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.aesKeyHex != "" {
		aead, err := newAEAD(cfg.aesKeyHex)
		if err != nil {
			return cfg, err
		}
		cfg.aead = aead
	}
	if cfg.maxFrame <= 0 || cfg.maxInflated <= 0 || cfg.maxPending <= 0 || cfg.maxInbox <= 0 {
		return cfg, fmt.Errorf("banio: size limits must be positive")
	}
	if cfg.heartbeatTimeout > 0 && cfg.heartbeatInterval <= 0 {
		return cfg, fmt.Errorf("banio: heartbeat timeout needs a positive interval")
	}
	return cfg, nil
}

// WithAESKey enables banbot-compatible AES-GCM encryption of message data. key is the
// AES key in hex: 32, 48 or 64 characters for AES-128/192/256. An invalid key makes
// NewClientIO, ServerIO.Serve and ServerIO.RunForever fail with ErrInvalidAESKey
// (banbot silently uses a truncated key instead).
func WithAESKey(key string) Option { return func(c *config) { c.aesKeyHex = key } }

// WithTLS serves TLS (server) or dials TLS (client) with cfg.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithToken sets a shared secret for banfleet peers. A server with a token accepts
// nothing from a connection but the authentication handshake until the connection
// presented the same token; a client with a token presents it when it connects and
// NewClientIO fails with ErrAuthFailed if the server refuses it. banbot peers cannot
// authenticate, so do not set a token on a server that banbot clients use.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithLogger sets the logger. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithHeartbeat sets how often a client pings (and a server checks for silent
// connections) and how long a connection may stay silent before it is considered
// dead: the server closes it, the client reconnects. timeout 0 disables the check.
func WithHeartbeat(interval, timeout time.Duration) Option {
	return func(c *config) { c.heartbeatInterval, c.heartbeatTimeout = interval, timeout }
}

// WithWriteTimeout bounds how long a write may wait for queue space or for the socket.
func WithWriteTimeout(d time.Duration) Option { return func(c *config) { c.writeTimeout = d } }

// WithHandshakeTimeout bounds how long a token-authenticated client waits for the
// server's answer in NewClientIO, and how long a server waits for a token.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) { c.handshakeTimeout = d }
}

// WithMaxFrameSize caps the size of one frame on the wire. A peer announcing more is
// disconnected.
func WithMaxFrameSize(n int) Option { return func(c *config) { c.maxFrame = n } }

// WithMaxInflatedSize caps the size of one payload after decompression.
func WithMaxInflatedSize(n int) Option { return func(c *config) { c.maxInflated = n } }

// WithMaxPendingBytes bounds the bytes queued for writing on one connection. Writers
// wait for room (up to the write timeout); Broadcast cuts a connection whose queue is
// past the bound (a slow consumer).
func WithMaxPendingBytes(n int) Option { return func(c *config) { c.maxPending = n } }

// WithMaxInboxBytes bounds the bytes of received messages waiting for the handler
// goroutine of one connection. Past it the read loop waits, which pushes back on the
// peer through TCP.
func WithMaxInboxBytes(n int) Option { return func(c *config) { c.maxInbox = n } }

// WithLimits bounds subscriptions per connection, pending waits per connection, and
// the server's key/value store (keys, key length, value length). Zero keeps a default.
func WithLimits(subs, waits, kvKeys, kvKeyLen, kvValueLen int) Option {
	return func(c *config) {
		setIfPositive(&c.maxSubs, subs)
		setIfPositive(&c.maxWaits, waits)
		setIfPositive(&c.kvKeys, kvKeys)
		setIfPositive(&c.kvKeyLen, kvKeyLen)
		setIfPositive(&c.kvValueLen, kvValueLen)
	}
}

func setIfPositive(dst *int, v int) {
	if v > 0 {
		*dst = v
	}
}

// WithMaxConns caps a server's connections, in total and per peer IP address (zero
// keeps a default). Past either cap a new connection is refused at once: it gets one
// welcome frame that says why (a banfleet client fails or retries with ErrRefused) and
// is closed, before it costs more than its socket. The total is lowered to fit the
// process's file descriptor limit. Connections made with WrapConn are not counted.
func WithMaxConns(total, perAddr int) Option {
	return func(c *config) {
		setIfPositive(&c.maxConns, total)
		setIfPositive(&c.maxConnsPerHost, perAddr)
	}
}

// WithAuthPenalty sets how long a host that failed to authenticate (wrong token, bad
// hello, acting before the hello) is barred from connecting: base after its first
// failure, doubling with each further one up to max; a host with no failure for ten
// minutes starts afresh. A barred host's connections are refused with ErrRefused.
// base 0 disables the throttle.
func WithAuthPenalty(base, max time.Duration) Option {
	return func(c *config) { c.authPenalty, c.maxAuthPenalty = base, max }
}

// WithCodec chooses whether to negotiate the fast codec with banfleet peers
// (CodecAuto, the default) or always speak banbot's zlib format (CodecZlib).
func WithCodec(codec Codec) Option { return func(c *config) { c.codec = codec } }

// WithDialer replaces the client's dial function (for tests, proxies, or unix
// sockets). TLS, when configured, is layered on top of what it returns.
func WithDialer(dial func(ctx context.Context, addr string) (net.Conn, error)) Option {
	return func(c *config) { c.dial = dial }
}

// WithReconnectBackoff sets the client's reconnect policy. newBackoff is called once
// per outage; when the policy returns backoff.Stop the client gives up and RunForever
// returns. The default retries forever with jittered exponential backoff up to 10 s.
func WithReconnectBackoff(newBackoff func() backoff.BackOff) Option {
	return func(c *config) {
		if newBackoff != nil {
			c.newBackoff = newBackoff
		}
	}
}

// ---- Byte budgets of retained state, and the lock queue ----
//
// The count limits above bound how many things a peer makes the other side keep, not
// how large they are; these bound the bytes, and the server's queue of Lock waiters.

const (
	// DefaultMaxSubscriptionBytes bounds the bytes of the tags one connection is
	// subscribed to (keys stored with SetData count too): room for thousands of
	// banbot- or banfleet-style tags such as "ohlcv_BTC/USDT_1m" or "job:<type>".
	DefaultMaxSubscriptionBytes = 256 << 10
	// DefaultMaxTagLen bounds the length of one subscribed tag.
	DefaultMaxTagLen = 1 << 10
	// DefaultMaxKVBytes bounds the bytes the server's key/value store holds: keys plus
	// values, locks and queued lock requests included. It holds 64 values of the
	// largest size DefaultMaxKVValueLen allows.
	DefaultMaxKVBytes = 64 << 20
	// DefaultMaxLockWaitersPerKey bounds the Lock requests queued for one key.
	DefaultMaxLockWaitersPerKey = 1024
	// DefaultMaxLockWaiters bounds the Lock requests queued on a server in all.
	DefaultMaxLockWaiters = 16 << 10
	// DefaultMaxLockWaitersPerConn bounds the Lock requests one connection has queued,
	// so that one client cannot take the whole server's budget of waiters.
	DefaultMaxLockWaitersPerConn = 1024
	// DefaultMaxLockWait is how long one queued Lock request waits on the server
	// before it is answered "retry"; the client then asks again and keeps its place.
	// It bounds how long a server keeps a request whose client went quiet.
	DefaultMaxLockWait = 10 * time.Second
)

// budgetConfig is the part of config the options below set.
type budgetConfig struct {
	subBytes      int           // bytes of subscribed tags per connection
	tagLen        int           // bytes of one tag
	kvBytes       int           // bytes held by the key/value store
	waitersPerKey int           // queued Lock requests per key
	waiters       int           // queued Lock requests in all
	waitersPerCon int           // queued Lock requests of one connection
	lockWait      time.Duration // longest wait of one queued Lock request
}

func defaultBudgets() budgetConfig {
	return budgetConfig{
		subBytes:      DefaultMaxSubscriptionBytes,
		tagLen:        DefaultMaxTagLen,
		kvBytes:       DefaultMaxKVBytes,
		waitersPerKey: DefaultMaxLockWaitersPerKey,
		waiters:       DefaultMaxLockWaiters,
		waitersPerCon: DefaultMaxLockWaitersPerConn,
		lockWait:      DefaultMaxLockWait,
	}
}

// WithSubscriptionBudget bounds, per connection, the total bytes of subscribed tags
// and the length of one tag. A subscribe past either is refused (the tags that do not
// fit) and logged, rate-limited; a subscribe payload that could not fit even if every
// tag were new is refused before it is parsed. Zero keeps a default.
func WithSubscriptionBudget(bytes, tagLen int) Option {
	return func(c *config) {
		setIfPositive(&c.budgets.subBytes, bytes)
		setIfPositive(&c.budgets.tagLen, tagLen)
	}
}

// WithMaxKVBytes bounds the bytes the server's key/value store holds (keys plus
// values; locks and queued lock requests count too), besides the key count and
// key/value lengths of WithLimits. A set past it is refused and logged, a Lock past it
// is busy. Zero keeps the default.
func WithMaxKVBytes(n int) Option {
	return func(c *config) { setIfPositive(&c.budgets.kvBytes, n) }
}

// WithLockWaiters bounds the Lock requests a server queues per key and in all. A
// request past either fails at once with an error wrapping ErrLimit. Zero keeps a
// default.
func WithLockWaiters(perKey, total int) Option {
	return func(c *config) {
		setIfPositive(&c.budgets.waitersPerKey, perKey)
		setIfPositive(&c.budgets.waiters, total)
	}
}

// WithLockWaitersPerConn bounds the Lock requests one connection may have queued on
// the server (default DefaultMaxLockWaitersPerConn). A request past it fails at once
// with an error wrapping ErrLimit. Zero keeps the default.
func WithLockWaitersPerConn(n int) Option {
	return func(c *config) { setIfPositive(&c.budgets.waitersPerCon, n) }
}

// WithMaxLockWait sets how long one Lock request waits in the server's queue before
// it is answered "retry" (a client asks for at most this; a server grants at most
// this). The client then asks again at once and keeps its place in the queue, so this
// bounds only how long a server holds a request of a client gone quiet, not how long
// Lock waits (its context does). Zero or less keeps the default.
func WithMaxLockWait(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.budgets.lockWait = d
		}
	}
}
