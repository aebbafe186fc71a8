package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
)

// TestRunWithoutTokenSaysWhy: a sweep against a master that requires a token, run
// without one, fails at once and says what to check, not just that a connection
// closed.
func TestRunWithoutTokenSaysWhy(t *testing.T) {
	leakcheck.Check(t)
	srv := banio.NewBanServer("", "test-master", banio.WithToken("s3cret"))
	m := dispatch.NewMaster(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() { _ = m.Close(); _ = srv.Close(); <-served }()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-master", ln.Addr().String(), "-quiet", "-bars", "200"}, env(), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "authentication required") || !strings.Contains(stderr.String(), "check -token / BANFLEET_TOKEN") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and a message that says authentication is required and what to check", code, &stderr)
	}
	if ctx.Err() != nil {
		t.Error("the sweep waited for the test's deadline instead of failing at the refusal")
	}
}
