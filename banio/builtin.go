package banio

import (
	"encoding/json"
	"log/slog"
	"strconv"
)

// Built-in actions every connection understands (docs/protocol.md).
const (
	actionSubscribe   = "subscribe"
	actionUnsubscribe = "unsubscribe"
	actionPing        = "ping"
	actionPong        = "pong"
)

func (c *BanConn) registerBuiltins() {
	c.Listen(actionSubscribe, c.onSubscribe)
	c.Listen(actionUnsubscribe, c.onUnsubscribe)
	// Heartbeats are answered on the read loop, never behind the handler goroutine: a
	// handler busy for longer than the peer's heartbeat timeout must not make the peer
	// drop a live connection. The pong is a one-off frame, which never waits for room.
	c.ListenInline(actionPing, c.onPing)
	c.ListenInline(actionPong, func(*IOMsgRaw) {}) // reading it already proved liveness
}

// parseTags decodes a subscribe/unsubscribe payload: a JSON array of strings.
func parseTags(data []byte) ([]string, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var tags []string
	err := json.Unmarshal(data, &tags)
	return tags, err
}

func (c *BanConn) onSubscribe(msg *IOMsgRaw) {
	// Refused unparsed when even all-new tags could not fit what is left of the byte
	// budget: parsing would copy every tag out first.
	if room := c.subscribeRoom(); len(msg.Data) > tagsPayloadMax(room, c.cfg.maxSubs) {
		c.badLog.log(c.log, slog.LevelWarn, "banio: subscribe refused unparsed: larger than the connection's remaining subscription budget allows",
			"bytes", len(msg.Data), "room", room, "budget", c.cfg.budgets.subBytes, "hint", "raise WithSubscriptionBudget")
		return
	}
	tags, err := parseTags(msg.Data)
	if err != nil {
		c.badLog.log(c.log, slog.LevelWarn, "banio: bad subscribe payload", "err", err)
		return
	}
	if refused, why := c.subscribe(tags); refused > 0 {
		c.badLog.log(c.log, slog.LevelWarn, "banio: subscriptions refused", "refused", refused, "of", len(tags), "err", why)
	}
}

func (c *BanConn) onUnsubscribe(msg *IOMsgRaw) {
	if limit := tagsPayloadMax(c.cfg.budgets.subBytes, c.cfg.maxSubs); len(msg.Data) > limit {
		c.badLog.log(c.log, slog.LevelWarn, "banio: unsubscribe refused unparsed: larger than any set of subscriptions",
			"bytes", len(msg.Data), "limit", limit)
		return
	}
	tags, err := parseTags(msg.Data)
	if err != nil {
		c.badLog.log(c.log, slog.LevelWarn, "banio: bad unsubscribe payload", "err", err)
		return
	}
	c.DeleteData(tags...)
}

// onPing answers with the value plus one, unencrypted, as banbot does, so heartbeats
// work even when the two sides' keys disagree.
func (c *BanConn) onPing(msg *IOMsgRaw) {
	c.pinger.Store(true)
	n, err := strconv.ParseInt(string(msg.Data), 10, 64)
	if err != nil {
		c.badLog.log(c.log, slog.LevelWarn, "banio: ping without an integer", "data", string(msg.Data))
		return
	}
	_ = c.send(actionPong, strconv.AppendInt(nil, n+1, 10), nil, true, true, writeOneOff)
}
