package masterd

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// TestBusyHTTPPortReportsNoReadiness: the "listening" line is the master's readiness
// signal (scripts and tests wait for it), so a -http port in use must fail the start
// before that line is printed, not after.
func TestBusyHTTPPortReportsNoReadiness(t *testing.T) {
	leakcheck.Check(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var stdout, stderr bytes.Buffer
	code := New("master").Run(context.Background(), []string{"-listen", "127.0.0.1:0", "-http", busy.Addr().String(), "-in-memory", "-log-level", "error"}, env(), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "-http "+busy.Addr().String()) {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 and an error naming -http", code, &stderr)
	}
	if strings.Contains(stdout.String(), "listening on") {
		t.Errorf("the master reported readiness although -http failed:\n%s", &stdout)
	}
}

// TestHandleHTTPAndFlags: a program's own route and flag work beside the daemon's
// /healthz and /metrics, and its flag reads BANFLEET_* like the daemon's.
func TestHandleHTTPAndFlags(t *testing.T) {
	leakcheck.Check(t)
	d := New("mymaster")
	var greeting string
	d.Flags(func(fs *flag.FlagSet) { fs.StringVar(&greeting, "greeting", "hi", "what GET /hello says") })
	d.HandleHTTP("GET /hello", func(f *Fleet) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, greeting+" from "+f.Addr)
		})
	})
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	go func() {
		code <- d.Run(ctx, []string{"-listen", "127.0.0.1:0", "-http", "127.0.0.1:0", "-in-memory", "-log-level", "error"},
			env("BANFLEET_GREETING", "hello"), pw, io.Discard)
		pw.Close()
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		buf := make([]byte, 4096)
		var out string
		for {
			n, err := pr.Read(buf)
			out += string(buf[:n])
			for {
				l, rest, ok := strings.Cut(out, "\n")
				if !ok {
					break
				}
				lines <- l
				out = rest
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		for range lines { // drain, so that Run's prints never block
		}
		if c := <-code; c != 0 {
			t.Errorf("exit %d", c)
		}
	}()
	var addr, url string
	timeout := time.After(10 * time.Second)
	for url == "" {
		select {
		case l := <-lines:
			if a, ok := strings.CutPrefix(l, "banfleet master listening on "); ok {
				addr = a
			}
			if u, ok := strings.CutPrefix(l, "banfleet master status on "); ok {
				url = u
			}
		case <-timeout:
			t.Fatal("the master printed no status address")
		}
	}
	for path, want := range map[string]string{"hello": "hello from " + addr, "healthz": "ok\n"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("/%s: %s %q, want %q", path, resp.Status, body, want)
		}
	}
	resp, err := http.Get(url + "metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("/metrics lacks the runtime's metrics:\n%.300s", body)
	}
	http.DefaultClient.CloseIdleConnections()
}
