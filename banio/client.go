package banio

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// ClientIO is a BanConn that dialed a server and keeps the connection alive: it pings,
// notices a silent server, and reconnects with jittered exponential backoff. After a
// reconnect it repeats the handshake and its subscriptions by itself, then calls
// ReInitConn. Messages written while it reconnects are queued (bounded) and sent on the
// new connection; waits pending when the connection dropped fail with ErrConnClosed.
//
// It may be given the addresses of several servers, the masters of a cluster: it dials
// them in turn and follows a follower's answer to the leader (addrs.go).
type ClientIO struct {
	*BanConn
	// Addr is the server's address, or a comma-separated list of addresses
	// ("a:1,b:2,c:3"), as given to NewClientIO; Addrs has it split, CurrentAddr says
	// which server the client is connected to. Changing it has no effect.
	Addr string
	// ReInitConn, if set, is called on its own goroutine after every reconnect, once
	// subscriptions have been restored. Set it before RunForever.
	ReInitConn func()
	// OnConnLost, if set, is called with the error when the connection is lost, after
	// pending waits have failed and before the client starts to reconnect; not when it
	// is closed. It runs on the read goroutine and must not block. Set it before
	// RunForever.
	OnConnLost func(err error)

	addrs   []string               // Addr split: dialed in turn
	current atomic.Pointer[string] // the address of the socket in use (CurrentAddr)

	subsMu sync.Mutex
	subs   map[string]struct{} // what this client subscribed to, for reconnects

	getValMu sync.Mutex // serialises GetVal: replies are keyed by the value's key

	handshake chan error // cap 1: the answer to the hello being awaited
	runOnce   sync.Once
	runEnded  chan error // cap 1: RunForever's result, from the goroutine the reading moved to

	// Owned by the reading goroutine (NewClientIO's, then the one RunForever reads on,
	// and whichever the reading moves to: movable.go).
	prehandshake bool   // a new socket's welcome is awaited before it is attached (addrs.go)
	handshaking  bool   // a welcome is being awaited: a refusal is its answer
	redirect     string // the leader a running connection's not_leader named: dialed first
	dialing      string // the address of the socket being connected or read
}

// DefaultGetValTimeout is GetVal's timeout when it is given 0.
const DefaultGetValTimeout = 30 * time.Second

// NewClientIO dials addr and says hello. addr may list several servers separated by
// commas, the masters of a cluster: they are dialed in turn, a follower's answer
// (ErrNotLeader) leads to the leader it names, and NewClientIO returns once a server
// took the connection, or fails with every address's error.
//
// With one address and no token it does not wait for an answer (a banbot server gives
// none). With WithToken, or with several addresses, it waits for the server's welcome
// (up to the handshake timeout) and fails with ErrAuthFailed if the token is refused
// or nobody answers, or ErrRefused (ErrNotLeader) if every server refused. Start
// reading with `go c.RunForever()`.
func NewClientIO(addr string, opts ...Option) (*ClientIO, error) {
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	c := &ClientIO{Addr: addr, addrs: splitAddrs(addr), subs: make(map[string]struct{}), handshake: make(chan error, 1), runEnded: make(chan error, 1)}
	c.prehandshake = len(c.addrs) > 1
	if cfg.token == "" && !c.prehandshake {
		nc, err := dialAbortable(&cfg, addr, nil)
		if err != nil {
			return nil, err
		}
		c.start(&cfg, nc, addr)
		if err := c.out.write(c.helloFrame(), writeOneOff); err != nil {
			_ = c.Close()
			return nil, err
		}
		return c, nil
	}
	nc, err := c.connectRound("", func(addr string) (net.Conn, error) {
		nc, err := dialAbortable(&cfg, addr, nil)
		if err != nil {
			return nil, err
		}
		if c.BanConn == nil {
			c.start(&cfg, nc, addr)
		}
		return nc, c.handshakeOn(nc, addr)
	})
	if err == nil && !c.out.attach(nc, nil) {
		_ = nc.Close()
		err = ErrConnClosed
	}
	if err != nil {
		if c.BanConn != nil {
			_ = c.Close()
		}
		return nil, err
	}
	return c, nil
}

// start makes the client's connection, around its first socket nc, dialed at addr.
func (c *ClientIO) start(cfg *config, nc net.Conn, addr string) {
	c.BanConn = newConn(cfg, nc)
	c.BanConn.client = c
	c.BanConn.out.cfg.reconnects = true // before anything is written
	c.fastRecv.Store(cfg.codec == CodecAuto)
	c.dialing = addr
	c.current.Store(&addr)
}

// dial connects to addr with the configured dialer, and TLS when configured.
func dial(ctx context.Context, cfg *config, addr string) (net.Conn, error) {
	var nc net.Conn
	var err error
	if cfg.dial != nil {
		nc, err = cfg.dial(ctx, addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("banio: dial %s: %w", addr, err)
	}
	if cfg.tls == nil {
		return nc, nil
	}
	tcfg := cfg.tls
	if tcfg.ServerName == "" && !tcfg.InsecureSkipVerify {
		tcfg = tcfg.Clone()
		tcfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(nc, tcfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("banio: TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// awaitWelcome reads until the server's welcome, routing anything else normally.
func (c *ClientIO) awaitWelcome(nc net.Conn) error {
	_ = nc.SetReadDeadline(time.Now().Add(c.cfg.handshakeTimeout))
	defer nc.SetReadDeadline(time.Time{})
	for {
		msg, err := c.readMsgFrom(nc)
		if err != nil {
			if errors.Is(err, ErrBadMessage) {
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("%w: no answer to the handshake within %v (not a banfleet server, or wrong AES key?)", ErrAuthFailed, c.cfg.handshakeTimeout)
			}
			return fmt.Errorf("banio: handshake: %w", err)
		}
		c.route(msg)
		select {
		case err := <-c.handshake:
			return err
		default:
		}
	}
}

// handshakeDone records the server's welcome.
func (c *ClientIO) handshakeDone(err error) {
	select {
	case c.handshake <- err:
	default:
	}
	if err != nil {
		c.closeWithError(err)
	}
}

// handshakeRefused hands a refusal to a NewClientIO waiting for its welcome, without
// closing the client: a running client reconnects instead.
func (c *ClientIO) handshakeRefused(err error) {
	select {
	case c.handshake <- err:
	default:
	}
}

// RunForever reads messages and reconnects when the connection is lost, until Close
// (then it returns nil) or until the reconnect policy gives up or the server refuses the
// token (then it returns why, and the client is closed).
func (c *ClientIO) RunForever() error {
	c.runOnce.Do(func() { go c.pingLoop() })
	// The socket the last connect attached. It may have failed already (a write found
	// it dead) before the read loop got to it: its loss is still reported, to
	// OnConnLost as to the log, since ReInitConn was called for it.
	// The reading runs on a goroutine of its own, not the caller's: a handler's task may
	// keep the reading goroutine after handing the reading on (RunMovable), and the
	// caller must hear of the end even then.
	go c.carryOn(c.currentSocket())
	return <-c.runEnded
}

// runFrom is RunForever's loop, reading socket nc first: until the client is closed or
// gives up reconnecting, or the reading moves to another goroutine (errReadMoved).
func (c *ClientIO) runFrom(nc net.Conn) error {
	for {
		err := c.readLoop(nc)
		if errors.Is(err, errReadMoved) {
			return err // nothing of the reader's is this goroutine's any more
		}
		// closing, not IsClosed: Close closes the socket (which ends readLoop) before it
		// closes done, and a client being closed must not dial again meanwhile.
		if c.closing() {
			if cerr := c.Err(); cerr != nil && !isCleanClose(cerr) && !errors.Is(cerr, ErrServerClosed) {
				return cerr
			}
			return nil
		}
		if nc != nil {
			c.log.Info("banio: connection lost, reconnecting", "err", err)
			c.socketFailed(nc, err)
			if c.OnConnLost != nil {
				c.OnConnLost(err)
			}
		} else {
			c.awaitSocketLoss() // the socket failed before it was read: let its waits fail first
		}
		var rerr error
		if nc, rerr = c.reconnect(); rerr != nil {
			c.closeWithError(rerr) // nothing if closed already: Err keeps the first cause
			if errors.Is(rerr, ErrConnClosed) {
				return nil
			}
			return rerr
		}
	}
}

// reconnect dials until it succeeds, the policy gives up, or the client is closed, and
// returns the socket it attached. Each try is a round over the addresses
// (connectRound), starting with the leader a not_leader answer named.
func (c *ClientIO) reconnect() (net.Conn, error) {
	b := c.cfg.newBackoff()
	b.Reset()
	first := c.redirect
	c.redirect = ""
	for {
		if c.closing() {
			return nil, c.endErr()
		}
		handshook := c.prehandshake
		nc, err := c.connectRound(first, c.tryAddr)
		first = ""
		if err == nil {
			return nc, c.attach(nc, handshook)
		}
		if c.closing() {
			return nil, c.endErr()
		}
		d := b.NextBackOff()
		if d == backoff.Stop {
			return nil, fmt.Errorf("banio: reconnect to %s gave up: %w", c.Addr, err)
		}
		c.log.Info("banio: reconnect failed", "err", err, "retry_in", d)
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-c.done:
			timer.Stop()
			return nil, c.endErr()
		}
	}
}

// endErr is why a closed client stopped reconnecting: the error it was closed with
// (a refused token, say), or ErrConnClosed after Close.
func (c *ClientIO) endErr() error {
	if err := c.Err(); err != nil && !isCleanClose(err) && !errors.Is(err, ErrServerClosed) {
		return err
	}
	return ErrConnClosed
}

// attach makes nc the client's socket: hello (unless handshook: the handshake sent it
// and had its answer) and subscriptions go first, then whatever was queued while
// disconnected.
func (c *ClientIO) attach(nc net.Conn, handshook bool) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = nc.Close()
		return ErrConnClosed
	}
	if c.nc != nc || !handshook {
		// After a handshake the reader stays: it may hold what followed the welcome.
		c.nc = nc
		c.br = bufio.NewReaderSize(nc, readBufferSize)
	}
	c.mu.Unlock()
	var first []byte
	if !handshook {
		c.fastSend.Store(false)
		c.peerMaxFrame.Store(0) // the next welcome says
		c.lastRead.Store(time.Now().UnixNano())
		first = c.helloFrame()
	}
	if tags := c.subscriptions(); len(tags) > 0 {
		data, _ := json.Marshal(tags)
		first, _ = encodeFrameWith(first, c.cfg, actionSubscribe, data, nil, true, false, wireZlib)
	}
	if !c.out.attach(nc, first) {
		_ = nc.Close()
		return ErrConnClosed
	}
	c.log.Info("banio: reconnected", "addr", c.dialing)
	if c.ReInitConn != nil {
		go c.ReInitConn()
	}
	return nil
}

// trackSubscriptions remembers what this client subscribes to, so a reconnect can
// restore it.
func (c *ClientIO) trackSubscriptions(action string, data []byte) {
	if action != actionSubscribe && action != actionUnsubscribe {
		return
	}
	tags, err := parseTags(data)
	if err != nil {
		return
	}
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	for _, t := range tags {
		if action == actionSubscribe {
			c.subs[t] = struct{}{}
		} else {
			delete(c.subs, t)
		}
	}
}

func (c *ClientIO) subscriptions() []string {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	tags := make([]string, 0, len(c.subs))
	for t := range c.subs {
		tags = append(tags, t)
	}
	return tags
}

// Subscribe asks the server to send this client the broadcasts of tags. Subscriptions
// are restored after every reconnect.
func (c *ClientIO) Subscribe(tags ...string) error {
	return c.WriteMsg(&IOMsg{Action: actionSubscribe, Data: tags})
}

// Unsubscribe undoes Subscribe.
func (c *ClientIO) Unsubscribe(tags ...string) error {
	return c.WriteMsg(&IOMsg{Action: actionUnsubscribe, Data: tags})
}

// GetVal reads a value from the server's key/value store. timeout is in seconds
// (0 → DefaultGetValTimeout). The key is sent JSON-quoted, the form banbot's server
// answers. Concurrent GetVal calls are serialised, because the reply is keyed by the
// value's key.
func (c *ClientIO) GetVal(key string, timeout int) (string, error) {
	d := DefaultGetValTimeout
	if timeout > 0 {
		d = time.Duration(timeout) * time.Second
	}
	c.getValMu.Lock()
	defer c.getValMu.Unlock()
	quoted, _ := json.Marshal(key)
	c.SetWait(key, 1)
	if err := c.WriteMsg(&IOMsg{Action: actionGetVal, Data: quoted}); err != nil {
		c.CloseWaitChan(key)
		return "", err
	}
	res, err := c.WaitResult(context.Background(), key, d)
	if err != nil {
		return "", fmt.Errorf("banio: GetVal %q: %w", key, err)
	}
	return string(res), nil
}

// SetVal stores a value in the server's key/value store (Val "" deletes). Like banbot's
// it is not acknowledged; a later GetVal on this client sees it, because the server
// handles one connection's messages in order.
func (c *ClientIO) SetVal(args *KeyValExpire) error {
	return c.WriteMsg(&IOMsg{Action: actionSetVal, Data: args})
}
