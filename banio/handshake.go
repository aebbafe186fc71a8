package banio

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// The capability handshake between banfleet peers. A client sends actionHello right
// after connecting, before anything else; a banfleet server answers actionWelcome. A
// banbot server has no handler for actionHello: it logs and drops it and never answers,
// so the client simply keeps banbot's zlib format. A banbot client never says hello, so
// a banfleet server keeps zlib for it. The same exchange carries the shared token.
//
// The server starts sending the fast codec right after its welcome; the client, once it
// has read the welcome. Each side accepts the fast codec from the moment the peer may
// send it: the client from its hello on, the server from reading the hello.
const (
	actionHello   = "__hello__"
	actionWelcome = "__welcome__"
	helloVersion  = 1
	codecFast     = "s2" // payloads tagged raw or s2 (compress.go)
	codecZlib     = "zlib"
)

type helloMsg struct {
	V      int      `json:"v"`
	Codecs []string `json:"codecs,omitempty"`
	Token  string   `json:"token,omitempty"`
	// MaxFrame is the largest frame the client accepts (its WithMaxFrameSize), so that
	// the server fails a send the client would refuse instead of being disconnected
	// for it. 0 (an older peer): unknown.
	MaxFrame int `json:"max_frame,omitempty"`
}

type welcomeMsg struct {
	V     int    `json:"v"`
	Codec string `json:"codec,omitempty"`
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"` // why Error: refuseAuth, refuseConnLimit, refuseThrottled, refuseNotLeader
	// Leader is where the leader is, with Code refuseNotLeader (notLeaderWelcome).
	Leader string `json:"leader,omitempty"`
	// MaxFrame is the largest frame the server accepts (see helloMsg.MaxFrame).
	MaxFrame int `json:"max_frame,omitempty"`
}

// helloFrame is the client's first frame on every socket.
func (c *BanConn) helloFrame() []byte {
	h := helloMsg{V: helloVersion, Token: c.cfg.token, MaxFrame: c.cfg.maxFrame}
	if c.cfg.codec == CodecAuto {
		h.Codecs = []string{codecFast}
	}
	data, _ := json.Marshal(h)
	frame, _ := encodeFrameWith(nil, c.cfg, actionHello, data, nil, true, false, wireZlib)
	return frame
}

// onHello runs on the server's read loop, so the connection is authenticated before
// the next frame is looked at. A hello also says the peer pings (sweep).
func (c *BanConn) onHello(msg *IOMsgRaw) {
	if c.server == nil {
		return
	}
	var h helloMsg
	if err := json.Unmarshal(msg.Data, &h); err != nil {
		if !c.authed.Load() {
			c.server.authFailed(c, "bad hello", "err", err)
			c.closeWithError(fmt.Errorf("%w: bad hello: %v", ErrAuthFailed, err))
			return
		}
		c.badLog.log(c.log, 0, "banio: bad hello", "err", err)
		return
	}
	if c.cfg.token != "" && subtle.ConstantTimeCompare([]byte(h.Token), []byte(c.cfg.token)) != 1 {
		c.server.authFailed(c, "wrong token")
		c.sendWelcome(welcomeMsg{V: helloVersion, Error: "authentication failed", Code: refuseAuth})
		c.closeWithError(fmt.Errorf("%w: wrong token", ErrAuthFailed))
		return
	}
	if leader, follower := c.server.leaderElsewhere(); follower {
		_ = c.refuseNotLeader(leader)
		return
	}
	if c.cfg.token != "" || c.cfg.tls != nil {
		if nc := c.currentSocket(); nc != nil {
			_ = nc.SetReadDeadline(time.Time{}) // set by wrapConn for the handshake
		}
	}
	c.pinger.Store(true)
	c.peerMaxFrame.Store(int64(max(h.MaxFrame, 0)))
	c.authed.Store(true)
	codec := codecZlib
	if c.cfg.codec == CodecAuto && slices.Contains(h.Codecs, codecFast) {
		codec = codecFast
		c.fastRecv.Store(true)
	}
	c.sendWelcome(welcomeMsg{V: helloVersion, Codec: codec, MaxFrame: c.cfg.maxFrame})
	if codec == codecFast {
		c.fastSend.Store(true)
	}
}

func (c *BanConn) sendWelcome(w welcomeMsg) {
	data, _ := json.Marshal(w)
	// The hello usually arrives together with a worker's first messages; queued,
	// the welcome would start a writer goroutine for one frame.
	_ = c.send(actionWelcome, data, nil, true, false, writeOneOff)
}

// onWelcome runs on the client's read loop.
func (c *BanConn) onWelcome(msg *IOMsgRaw) {
	if c.client == nil {
		return
	}
	var w welcomeMsg
	if err := json.Unmarshal(msg.Data, &w); err != nil {
		c.badLog.log(c.log, 0, "banio: bad welcome", "err", err)
		return
	}
	switch w.Code {
	case refuseConnLimit, refuseThrottled:
		// Not for good: a first connection fails with it, a running client retries
		// after its backoff.
		c.client.refused(fmt.Errorf("%w: server says: %s", ErrRefused, w.Error))
		return
	case refuseNotLeader:
		c.client.notLeader(w.Leader) // addrs.go
		return
	}
	switch {
	case w.Code == refuseAuth && c.cfg.token == "":
		c.client.handshakeDone(fmt.Errorf("%w: the server requires a token and none was given (WithToken)", ErrAuthRequired))
		return
	case w.Code == refuseAuth:
		c.client.handshakeDone(fmt.Errorf("%w: the server refused the token", ErrAuthFailed))
		return
	case w.Error != "":
		c.client.handshakeDone(fmt.Errorf("%w: server says: %s", ErrAuthFailed, w.Error))
		return
	}
	c.peerMaxFrame.Store(int64(max(w.MaxFrame, 0)))
	if w.Codec == codecFast && c.cfg.codec == CodecAuto {
		c.fastSend.Store(true)
	}
	c.client.handshakeDone(nil)
}
