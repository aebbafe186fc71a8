package banio

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// IBanConn is what both ends of a BanIO connection offer. Names follow banbot's BanIO.
// *BanConn implements it (and so do *ClientIO and the connections of a ServerIO); see
// BanConn's methods for the details of each.
type IBanConn interface {
	// WriteMsg marshals msg.Data (string/[]byte as-is, nil as none, else JSON) and
	// sends the message.
	WriteMsg(msg *IOMsg) error
	// Write sends a message whose Data is already marshalled.
	Write(msg *IOMsgRaw) error
	// ReadMsg reads and decodes one message, for callers that drive the read loop
	// themselves instead of calling RunForever.
	ReadMsg() (*IOMsgRaw, error)

	// SetData stores val under each tag, locally on this connection.
	SetData(val any, tags ...string)
	// GetData returns the value stored under key (subscriptions are stored as true).
	GetData(key string) (any, bool)
	// PopData returns and removes the value stored under key.
	PopData(key string) (any, bool)
	// DeleteData removes the values stored under tags.
	DeleteData(tags ...string)

	// SetWait registers a wait for size results under key ("" makes a new unique
	// key) and returns the key.
	SetWait(key string, size int) string
	// GetWaitChan returns the channel the results for key arrive on.
	GetWaitChan(key string) (chan []byte, bool)
	// CloseWaitChan removes the wait for key.
	CloseWaitChan(key string)
	// SendWaitRes answers the peer's wait key with data (action "__res__"+key).
	SendWaitRes(key string, data any) error
	// WaitResult waits for the result for key: it ends with the result, ctx's error,
	// ErrTimeout, ErrWaitOverflow or, as soon as the connection is lost, ErrConnClosed.
	WaitResult(ctx context.Context, key string, timeout time.Duration) ([]byte, error)

	// GetRemote returns the peer's address.
	GetRemote() string
	// IsClosed reports whether the connection was closed for good.
	IsClosed() bool
	// RunForever reads and routes messages until the connection ends.
	RunForever() error
	// Close closes the connection for good.
	Close() error
}

// BanConn is one BanIO connection: a read loop that decodes frames and routes them (to
// waits, to the handler goroutine), a writer (writer.go), per-connection data and
// subscriptions, and pending waits. It is safe for concurrent use.
//
// Goroutines: the caller of RunForever reads (a ClientIO reads on a goroutine of its
// own, which may hand the reading on: movable.go); a handler goroutine runs handlers in
// arrival order (started on the first message that needs one); the writer's goroutine
// writes the frames callers queue (started on first need, ended after a heartbeat
// interval with nothing to write). All end when the connection closes.
type BanConn struct {
	cfg    *config
	log    *slog.Logger
	server *ServerIO // set on server-side connections
	client *ClientIO // set on a client's connection
	remote string
	// loopback: the peer's address is a loopback one, so it runs on this host.
	loopback bool

	// mu protects the following fields.
	mu       sync.Mutex
	nc       net.Conn // the socket being read; nil while a client reconnects
	br       *bufio.Reader
	rbuf     []byte // frame body buffer, reused
	closed   bool
	closeErr error
	onClose  []func() // OnClose hooks

	// lossMu makes a client's loss of a socket one step (socketFailed): the goroutine
	// that finds the socket gone first (a write, the heartbeat, the read loop) holds it
	// until the socket's waits have failed, and the read loop takes it before it
	// reconnects (ClientIO.RunForever).
	lossMu sync.Mutex

	// Owned by the reading goroutine.
	hdr        [4]byte  // frame length header
	lastAction string   // the last action read (internAction)
	readMore   bool     // a complete frame is buffered behind the one just read
	batching   bool     // counted in a read batch (flush.go)
	ownBody    bool     // the frame just read is in a buffer of its own (readLarge)
	viewMsg    IOMsgRaw // the message an inline view handler is lent (handleMsg)
	// reader is the reading role, which a client's read loop may give to another
	// goroutine (movable.go).
	reader readerState

	done chan struct{}  // closed when the connection is closed for good
	wg   sync.WaitGroup // the handler goroutine; it ends soon after done closes

	fastSend atomic.Bool   // the peer accepts the fast codec
	fastRecv atomic.Bool   // we accept the fast codec from the peer
	authed   atomic.Bool   // server side: the peer presented the token (or none is needed)
	lastRead atomic.Int64  // unix ns when the peer last showed it is alive (silentFor)
	reads    atomic.Uint64 // messages decoded; counted without reading the clock per frame
	seen     atomic.Uint64 // reads when silentFor last looked
	progress atomic.Uint64 // bytes of large frames read or written so far (readBody, writeChunks)
	seenProg atomic.Uint64 // progress when silentFor last looked
	// pinger: the peer has shown it keeps the connection alive (it said hello or
	// pinged), so its silence means it is gone (ServerIO.sweep).
	pinger atomic.Bool
	// peerMaxFrame is the largest frame the peer said it accepts (the handshake); 0
	// when it did not say (banbot, older banfleet): then only our own limit applies.
	peerMaxFrame atomic.Int64
	created      time.Time
	// addrKey is the peer's host as counted by the server's connection limits; "" for
	// a connection the server did not admit through Serve.
	addrKey string

	handlers atomic.Pointer[handlerTable]
	listenMu sync.Mutex // serialises Listen's copy-on-write of handlers

	data  dataStore
	waits waitTable
	out   writer
	in    inbox

	badLog     logLimiter
	unknownLog logLimiter
}

const readBufferSize = 4096

// newConn wraps nc. Built-in actions are registered; the caller starts RunForever.
func newConn(cfg *config, nc net.Conn) *BanConn {
	c := &BanConn{
		cfg:      cfg,
		nc:       nc,
		br:       bufio.NewReaderSize(nc, readBufferSize),
		remote:   nc.RemoteAddr().String(),
		loopback: isLoopback(nc.RemoteAddr()) && !cfg.compressLocal,
		done:     make(chan struct{}),
		created:  time.Now(),
	}
	c.log = cfg.logger.With("remote", c.remote)
	c.lastRead.Store(c.created.UnixNano())
	c.authed.Store(true) // only a server with a token requires authentication
	c.handlers.Store(&handlerTable{})
	c.waits.init(cfg.maxWaits)
	c.out.init(writerConfig{maxPending: cfg.maxPending, writeTimeout: cfg.writeTimeout}, writerHooks{
		socketFailed: c.socketFailed,
		slowConsumer: func() { c.closeWithError(ErrSlowConsumer) },
		dropped: func(n int) {
			c.badLog.log(c.log, slog.LevelWarn, "banio: frame dropped: the write queue stayed full for the write timeout", "bytes", n)
		},
		progress: &c.progress,
	}, nc)
	c.in.init()
	c.registerBuiltins()
	return c
}

// GetRemote returns the peer's address.
func (c *BanConn) GetRemote() string { return c.remote }

// IsClosed reports whether the connection was closed for good.
func (c *BanConn) IsClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// closing reports whether Close has begun (IsClosed turns true only once it is done).
func (c *BanConn) closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Done returns a channel closed when the connection is closed for good.
func (c *BanConn) Done() <-chan struct{} { return c.done }

// Err returns why the connection closed (nil while open, or after a plain Close).
func (c *BanConn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// Close closes the connection for good: queued frames are flushed (bounded by one
// second), pending waits fail with ErrConnClosed, a client stops reconnecting, and the
// connection's goroutines end. Close is idempotent.
func (c *BanConn) Close() error {
	c.closeWithError(nil)
	return nil
}

// closeGrace bounds how long Close spends flushing queued frames.
const closeGrace = time.Second

func (c *BanConn) closeWithError(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.closeErr = true, err
	readSock := c.nc
	c.mu.Unlock()
	switch {
	case err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
	case errors.Is(err, ErrAuthFailed) && c.server != nil:
		// Strangers can cause these at will: one line per interval for the server.
		c.server.authLog.log(c.log, slog.LevelInfo, "banio: closing unauthenticated connection", "err", err)
	case errors.Is(err, ErrNotLeader) && c.server != nil:
		// refuseNotLeader logged it, once an interval for the server.
	case errors.Is(err, errNothingValid) && c.server != nil:
		c.server.strangerLog.log(c.log, slog.LevelInfo, "banio: closing connection", "err", err)
	default:
		c.log.Info("banio: closing connection", "err", err)
	}
	sock := c.out.flushAndDetach(closeGrace)
	if sock != nil {
		_ = sock.Close()
	}
	if readSock != nil && readSock != sock {
		_ = readSock.Close()
	}
	c.waits.failAll(true)
	close(c.done)
	if c.server != nil {
		c.server.forget(c)
	}
	c.mu.Lock()
	hooks := c.onClose
	c.onClose = nil
	c.mu.Unlock()
	for _, fn := range hooks {
		go fn() // never under a lock, never in the way of whoever closed
	}
}

// OnClose registers fn to run, on its own goroutine, once the connection is closed for
// good (for a client: not on a reconnect). Registered after the close, it runs at once.
// It saves a goroutine per connection blocked on Done.
func (c *BanConn) OnClose(fn func()) {
	c.mu.Lock()
	if !c.closed {
		c.onClose = append(c.onClose, fn)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	go func() {
		<-c.done
		fn()
	}()
}

// socketFailed handles the loss of the socket nc: a server-side connection closes; a
// client's pending waits fail at once and its read loop reconnects.
//
// For a client it is one step under lossMu, which the read loop takes too before it
// reconnects. Without that, a write that found the socket dead could close it (waking
// the read loop) and be descheduled before failing the waits: the read loop, finding
// the socket dropped already, reconnected, and the late failAll then failed the waits
// registered for the new socket. In dispatch's Client a blob request hung that way on
// a connection that had come back (fleettest's TestCutAfterMidUpload, about once in
// 300 runs under the race detector).
func (c *BanConn) socketFailed(nc net.Conn, err error) {
	if c.client == nil {
		c.closeWithError(err)
		return
	}
	c.lossMu.Lock()
	defer c.lossMu.Unlock()
	c.mu.Lock()
	if c.nc != nc || nc == nil {
		c.mu.Unlock()
		return
	}
	c.nc = nil
	c.mu.Unlock()
	// Said here: the read loop, woken by the close, sees only a closed socket.
	c.log.Info("banio: write failed, reconnecting", "err", err)
	c.out.detach(nc)
	_ = nc.Close() // wakes the read loop, which reconnects once this is done
	if testHookSocketClosed != nil {
		testHookSocketClosed()
	}
	c.waits.failAll(false)
}

// testHookSocketClosed, when a test sets it, runs in socketFailed between closing the
// socket and failing its waits.
var testHookSocketClosed func()

// awaitSocketLoss returns once a socket loss that another goroutine is handling
// (socketFailed) is done: its waits have failed.
func (c *BanConn) awaitSocketLoss() {
	c.lossMu.Lock()
	//lint:ignore SA2001 an empty critical section: waiting for the holder is the point
	c.lossMu.Unlock()
}

// currentSocket returns the socket being read (nil while reconnecting).
func (c *BanConn) currentSocket() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc
}

// RunForever reads and routes messages until the connection ends. On a server-side
// connection it returns when the peer goes away (nil for a clean close). A ClientIO
// overrides it to reconnect.
func (c *BanConn) RunForever() error {
	err := c.readLoop(c.currentSocket())
	c.closeWithError(err)
	if isCleanClose(err) {
		return nil
	}
	return err
}

// isCleanClose tells an orderly end (EOF, our own Close) from a failure.
func isCleanClose(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, ErrConnClosed)
}

// isLoopback reports whether addr is a loopback IP address.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
