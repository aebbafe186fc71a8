package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
)

func parseConn(t *testing.T, server bool, args ...string) (*Conn, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c Conn
	if server {
		c.RegisterServer(fs)
	} else {
		c.RegisterClient(fs)
	}
	if err := Parse(fs, args, nil); err != nil {
		return nil, err
	}
	return &c, c.Validate()
}

func TestConnValidate(t *testing.T) {
	if _, err := parseConn(t, true); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if _, err := parseConn(t, true, "-aes-key", strings.Repeat("ab", 16), "-token", "x"); err != nil {
		t.Fatalf("AES-128 key: %v", err)
	}
	for _, args := range [][]string{
		{"-aes-key", "abc"}, {"-aes-key", strings.Repeat("zz", 16)}, {"-aes-key", strings.Repeat("ab", 20)},
		{"-heartbeat", "0"}, {"-heartbeat-timeout", "-1s"}, {"-heartbeat", "5s", "-heartbeat-timeout", "5s"},
		{"-tls-cert", "c.pem"},
	} {
		if _, err := parseConn(t, true, args...); err == nil {
			t.Errorf("%q must be refused", args)
		}
	}
	if _, err := parseConn(t, false, "-heartbeat-timeout", "0"); err != nil {
		t.Errorf("a zero heartbeat timeout disables the check: %v", err)
	}
	c, _ := parseConn(t, true, "-tls-ca", "ca.pem")
	if _, err := c.ServerOptions(); err == nil {
		t.Error("a server CA without a certificate must be refused")
	}
}

// writePKI writes a CA and a certificate it signed for 127.0.0.1, as PEM files.
func writePKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "banfleet"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"master.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
}

// serveWith serves a banio server with the given options on loopback.
func serveWith(t *testing.T, opts []banio.Option) string {
	t.Helper()
	srv := banio.NewBanServer("", "daemon-test", opts...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return ln.Addr().String()
}

// roundTrip connects a client with opts and stores and reads a value on the server.
func roundTrip(addr string, opts []banio.Option) error {
	c, err := banio.NewClientIO(addr, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	go func() { _ = c.RunForever() }()
	if err := c.SetVal(&banio.KeyValExpire{Key: "k", Val: "v"}); err != nil {
		return err
	}
	v, err := c.GetVal("k", 5)
	if err == nil && v != "v" {
		err = errors.New("GetVal = " + v)
	}
	return err
}

func TestMutualTLS(t *testing.T) {
	ca, cert, key := writePKI(t, t.TempDir())
	server, err := parseConn(t, true, "-tls-cert", cert, "-tls-key", key, "-tls-ca", ca, "-token", "tok")
	if err != nil {
		t.Fatal(err)
	}
	sopts, err := server.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	addr := serveWith(t, sopts)

	good, _ := parseConn(t, false, "-tls-ca", ca, "-tls-cert", cert, "-tls-key", key, "-token", "tok")
	copts, err := good.ClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(addr, copts); err != nil {
		t.Fatalf("client with CA, certificate and token: %v", err)
	}

	for name, args := range map[string][]string{
		"no client certificate": {"-tls-ca", ca, "-token", "tok"},
		"unknown CA":            {"-tls", "-tls-cert", cert, "-tls-key", key, "-token", "tok"},
		"wrong server name":     {"-tls-ca", ca, "-tls-cert", cert, "-tls-key", key, "-tls-server-name", "other.test", "-token", "tok"},
		"plaintext":             {"-token", "tok"},
	} {
		c, _ := parseConn(t, false, args...)
		opts, err := c.ClientOptions()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		opts = append(opts, banio.WithHandshakeTimeout(2*time.Second))
		if err := roundTrip(addr, opts); err == nil {
			t.Errorf("%s: connected", name)
		}
	}
}

func TestTLSFileErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not pem"), 0o600)
	s, _ := parseConn(t, true, "-tls-cert", junk, "-tls-key", junk)
	if _, err := s.ServerOptions(); err == nil {
		t.Error("a junk certificate must be refused")
	}
	c, _ := parseConn(t, false, "-tls-ca", junk)
	if _, err := c.ClientOptions(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a junk CA: %v", err)
	}
	c, _ = parseConn(t, false, "-tls-ca", filepath.Join(dir, "missing.pem"))
	if _, err := c.ClientOptions(); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("a missing CA: %v", err)
	}
}

func TestAuthHint(t *testing.T) {
	server, err := parseConn(t, true, "-token", "right")
	if err != nil {
		t.Fatal(err)
	}
	sopts, _ := server.ServerOptions()
	addr := serveWith(t, sopts)
	cl, _ := parseConn(t, false, "-token", "wrong")
	copts, _ := cl.ClientOptions()
	refused := roundTrip(addr, copts)
	for _, c := range []struct {
		err   error
		words string
	}{
		{refused, "authentication failed"},
		{fmt.Errorf("dispatch: upload blob: %w", banio.ErrAuthRequired), "authentication required"},
	} {
		err := AuthHint(c.err)
		if !errors.Is(err, banio.ErrAuthFailed) || !strings.Contains(err.Error(), c.words) || !strings.Contains(err.Error(), "check -token / BANFLEET_TOKEN") {
			t.Errorf("AuthHint(%v) = %v, want it to say %q and what to check", c.err, err, c.words)
		}
	}
	if err := AuthHint(banio.ErrConnClosed); err != banio.ErrConnClosed {
		t.Errorf("AuthHint changed an unrelated error: %v", err)
	}
}
