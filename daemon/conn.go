package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/banfleet/banfleet/banio"
)

// Conn holds the transport settings a master and its peers must agree on: the
// shared token, banbot's AES key, TLS, and heartbeats. Register its flags with
// RegisterServer (cmd/master) or RegisterClient (workers, remote callers), then
// turn them into banio options with ServerOptions or ClientOptions.
type Conn struct {
	Token  string // shared secret every peer presents (banio.WithToken)
	AESKey string // banbot-compatible AES key in hex (banio.WithAESKey)

	TLS           bool   // client: dial TLS (implied by TLSCA or TLSCert)
	TLSCert       string // server: certificate file; client: client certificate file
	TLSKey        string // private key file of TLSCert
	TLSCA         string // server: CA that client certificates must chain to; client: CA of the master
	TLSServerName string // client: name to verify in the master's certificate (default: the host dialled)

	Heartbeat        time.Duration // how often to ping / check for silent peers
	HeartbeatTimeout time.Duration // silence after which a peer is dead; 0 disables

	MaxFrameSize    int // bytes of one frame on the wire (banio.WithMaxFrameSize); the same on every peer; 0: default
	MaxConns        int // server: connections at once (banio.WithMaxConns)
	MaxConnsPerAddr int // server: connections from one IP address
	MaxKVBytes      int // server: bytes of the key/value store (banio.WithMaxKVBytes)
	MaxSubBytes     int // server: bytes of subscribed tags per connection (banio.WithSubscriptionBudget)
}

// RegisterServer adds the master's transport flags to fs.
func (c *Conn) RegisterServer(fs *flag.FlagSet) {
	c.registerCommon(fs)
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve TLS with this PEM certificate `file` (needs -tls-key)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key `file` of -tls-cert")
	fs.StringVar(&c.TLSCA, "tls-ca", "", "require client certificates signed by this PEM CA `file` (mutual TLS)")
	fs.IntVar(&c.MaxConns, "max-conns", banio.DefaultMaxConns, "connections held at once (lowered to fit the open-files limit); past it new ones are refused")
	fs.IntVar(&c.MaxConnsPerAddr, "max-conns-per-addr", banio.DefaultMaxConnsPerAddr, "connections from one IP address; past it new ones are refused")
	fs.IntVar(&c.MaxKVBytes, "max-kv-bytes", banio.DefaultMaxKVBytes, "`bytes` of keys and values the key/value store (banbot's onSetVal, locks) holds")
	fs.IntVar(&c.MaxSubBytes, "max-subscription-bytes", banio.DefaultMaxSubscriptionBytes, "`bytes` of subscribed tags one connection may hold")
}

// RegisterClient adds a worker's or remote caller's transport flags to fs.
func (c *Conn) RegisterClient(fs *flag.FlagSet) {
	c.registerCommon(fs)
	fs.BoolVar(&c.TLS, "tls", false, "connect with TLS, verifying the master against the system roots")
	fs.StringVar(&c.TLSCA, "tls-ca", "", "verify the master's certificate against this PEM CA `file` (implies -tls)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "present this PEM client certificate `file` (implies -tls; needs -tls-key)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key `file` of -tls-cert")
	fs.StringVar(&c.TLSServerName, "tls-server-name", "", "`name` expected in the master's certificate (default: the host dialled)")
}

func (c *Conn) registerCommon(fs *flag.FlagSet) {
	fs.StringVar(&c.Token, "token", "", "shared `secret` every peer must present (prefer the environment variable: flags show in ps)")
	fs.StringVar(&c.AESKey, "aes-key", "", "banbot-compatible AES-GCM `key` in hex (32, 48 or 64 digits)")
	fs.DurationVar(&c.Heartbeat, "heartbeat", banio.DefaultHeartbeatInterval, "`interval` between pings (clients) and checks for silent peers (master)")
	fs.DurationVar(&c.HeartbeatTimeout, "heartbeat-timeout", banio.DefaultHeartbeatTimeout, "silence after which a peer counts as dead (0 disables)")
	fs.IntVar(&c.MaxFrameSize, "max-frame-size", banio.DefaultMaxFrameSize, "largest frame in `bytes` sent or accepted; give every peer the same value")
}

// Validate checks the settings without touching files: an AES key banio would
// refuse only when serving or dialling, heartbeats, and TLS flags that go together.
// ServerOptions and ClientOptions call it too.
func (c *Conn) Validate() error {
	if c.AESKey != "" {
		b, err := hex.DecodeString(c.AESKey)
		if err != nil || (len(b) != 16 && len(b) != 24 && len(b) != 32) {
			return errors.New("-aes-key must be 32, 48 or 64 hex digits (AES-128, -192 or -256)")
		}
	}
	if c.Heartbeat <= 0 {
		return fmt.Errorf("-heartbeat must be positive, not %s", c.Heartbeat)
	}
	if c.HeartbeatTimeout < 0 {
		return fmt.Errorf("-heartbeat-timeout must not be negative, not %s", c.HeartbeatTimeout)
	}
	if c.HeartbeatTimeout > 0 && c.HeartbeatTimeout <= c.Heartbeat {
		return fmt.Errorf("-heartbeat-timeout (%s) must exceed -heartbeat (%s)", c.HeartbeatTimeout, c.Heartbeat)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	if c.MaxFrameSize != 0 && c.MaxFrameSize < 1<<10 {
		return fmt.Errorf("-max-frame-size must be at least 1024 bytes, not %d", c.MaxFrameSize)
	}
	if c.MaxConns < 0 || c.MaxConnsPerAddr < 0 || c.MaxKVBytes < 0 || c.MaxSubBytes < 0 {
		return fmt.Errorf("-max-conns, -max-conns-per-addr, -max-kv-bytes and -max-subscription-bytes must not be negative")
	}
	return nil
}

// common is the options both sides share.
func (c *Conn) common() []banio.Option {
	opts := []banio.Option{banio.WithHeartbeat(c.Heartbeat, c.HeartbeatTimeout)}
	if c.MaxFrameSize > 0 {
		opts = append(opts, banio.WithMaxFrameSize(c.MaxFrameSize))
	}
	if c.MaxConns > 0 || c.MaxConnsPerAddr > 0 {
		opts = append(opts, banio.WithMaxConns(c.MaxConns, c.MaxConnsPerAddr))
	}
	if c.MaxKVBytes > 0 {
		opts = append(opts, banio.WithMaxKVBytes(c.MaxKVBytes))
	}
	if c.MaxSubBytes > 0 {
		opts = append(opts, banio.WithSubscriptionBudget(c.MaxSubBytes, 0))
	}
	if c.Token != "" {
		opts = append(opts, banio.WithToken(c.Token))
	}
	if c.AESKey != "" {
		opts = append(opts, banio.WithAESKey(c.AESKey))
	}
	return opts
}

// TLSEnabled reports whether the settings ask for TLS.
func (c *Conn) TLSEnabled(server bool) bool {
	if server {
		return c.TLSCert != ""
	}
	return c.TLS || c.TLSCA != "" || c.TLSCert != ""
}

// ServerOptions validates the settings and returns the master's banio options,
// loading the TLS files.
func (c *Conn) ServerOptions() ([]banio.Option, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.TLSCA != "" && c.TLSCert == "" {
		return nil, errors.New("-tls-ca needs -tls-cert and -tls-key: client certificates are checked only over TLS")
	}
	opts := c.common()
	if c.TLSCert == "" {
		return opts, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		pool, err := loadCertPool(c.TLSCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return append(opts, banio.WithTLS(cfg)), nil
}

// ClientOptions validates the settings and returns a worker's or caller's banio
// options, loading the TLS files.
func (c *Conn) ClientOptions() ([]banio.Option, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := c.common()
	if !c.TLSEnabled(false) {
		return opts, nil
	}
	cfg := &tls.Config{ServerName: c.TLSServerName, MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		pool, err := loadCertPool(c.TLSCA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return append(opts, banio.WithTLS(cfg)), nil
}

func loadCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS CA %s: no PEM certificate found", file)
	}
	return pool, nil
}
