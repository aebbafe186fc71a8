package dispatch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
)

// TestClientWithoutTokenSaysSo: a Client that gives no token (or a wrong one) to a
// master that requires one fails every call with an error that says authentication
// was required (or failed), not merely that the connection closed: the master's
// refusal is the cause, and it must reach the caller.
func TestClientWithoutTokenSaysSo(t *testing.T) {
	leakcheck.Check(t)
	// No throttle: the second case comes from the same host right after the first.
	f := newFleetIO(t, []banio.Option{banio.WithToken("s3cret"), banio.WithAuthPenalty(0, 0)})
	cases := []struct {
		name  string
		opts  []banio.Option
		sent  error
		words string
	}{
		{"no token", nil, banio.ErrAuthRequired, "authentication required"},
		{"wrong token", []banio.Option{banio.WithToken("guess")}, banio.ErrAuthFailed, "authentication failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			client, err := dispatch.NewClient(f.addr, dispatch.WithBanIO(c.opts...))
			if err != nil {
				// A client with a token waits for the master's answer and fails here.
				if !errors.Is(err, c.sent) || !strings.Contains(err.Error(), c.words) {
					t.Fatalf("NewClient: %v, want %v", err, c.sent)
				}
				return
			}
			defer client.Close()
			// The first call usually leaves before the refusal arrives, the second
			// finds the connection closed: both must name the refusal.
			_, err = client.Call(ctx, "echo", "x")
			if !errors.Is(err, c.sent) || !strings.Contains(err.Error(), c.words) {
				t.Errorf("Call: %v, want it to say %q", err, c.words)
			}
			_, err = client.PutBlob(ctx, []byte("bars"))
			if !errors.Is(err, c.sent) || !strings.Contains(err.Error(), c.words) {
				t.Errorf("PutBlob: %v, want it to say %q", err, c.words)
			}
			if ctx.Err() != nil {
				t.Error("the calls waited for the test's deadline instead of failing at the refusal")
			}
		})
	}
}
