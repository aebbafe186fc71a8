package btjob

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/examples/backtest/engine"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/worker"
)

func TestJobIDIsStableAndDistinct(t *testing.T) {
	p := engine.Params{Fast: 12, Slow: 26, Kind: engine.KindEMA, FeeBps: 4, SlippageBps: 2.5}
	hash := protocol.BlobHash([]byte("bars"))
	id := JobID(hash, p)
	if want := "bt-" + hash[len("sha256:"):][:12] + "-ema-12-26-4-2.5"; id != want {
		t.Fatalf("JobID = %q, want %q", id, want)
	}
	seen := map[string]bool{id: true}
	for _, q := range []engine.Params{
		{Fast: 12, Slow: 26, Kind: engine.KindSMA, FeeBps: 4, SlippageBps: 2.5},
		{Fast: 1, Slow: 226, Kind: engine.KindEMA, FeeBps: 4, SlippageBps: 2.5},
		{Fast: 12, Slow: 26, Kind: engine.KindEMA, FeeBps: 4, SlippageBps: 2},
	} {
		if seen[JobID(hash, q)] {
			t.Errorf("%+v shares an ID", q)
		}
		seen[JobID(hash, q)] = true
	}
	if JobID(protocol.BlobHash([]byte("other bars")), p) == id {
		t.Error("other data must give another ID")
	}
}

func TestJobs(t *testing.T) {
	params := engine.DefaultGrid().Params()
	jobs, err := Jobs("sha256:abc", params, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != len(params) {
		t.Fatalf("%d jobs for %d params", len(jobs), len(params))
	}
	again, _ := Jobs("sha256:abc", params, time.Minute)
	for i, j := range jobs {
		var p Payload
		if err := json.Unmarshal(j.Payload.([]byte), &p); err != nil {
			t.Fatal(err)
		}
		if j.Type != Type || j.Timeout != time.Minute || p.Data != "sha256:abc" || p.Params != params[i] || j.ID != again[i].ID {
			t.Fatalf("job %d: %+v with payload %+v", i, j, p)
		}
	}
	if _, err := Jobs("h", []engine.Params{params[0], params[1], params[0]}, 0); err == nil || !strings.Contains(err.Error(), "0 and 2") {
		t.Errorf("repeated parameters: %v", err)
	}
	if _, err := Jobs("h", []engine.Params{{Fast: 1, Slow: 2, Kind: "sma", FeeBps: math.NaN()}}, 0); err == nil {
		t.Error("a NaN cost cannot travel as JSON and must be refused")
	}
}

func TestBarsCache(t *testing.T) {
	c := newBarsCache(2)
	decodes := 0
	load := func() ([]engine.Bar, error) { decodes++; return make([]engine.Bar, decodes), nil }
	ctx := context.Background()
	for _, h := range []string{"a", "a", "b", "a", "c", "c"} {
		if _, err := c.get(ctx, h, load); err != nil {
			t.Fatal(err)
		}
	}
	if decodes != 3 || c.len() != 2 {
		t.Fatalf("%d decodes, %d cached; want 3 and 2", decodes, c.len())
	}
	if _, err := c.get(ctx, "a", load); err != nil || decodes != 4 {
		t.Fatalf("the oldest entry must have been dropped: %d decodes, %v", decodes, err)
	}

	bad := errors.New("corrupt")
	if _, err := c.get(ctx, "x", func() ([]engine.Bar, error) { return nil, bad }); !errors.Is(err, bad) {
		t.Fatalf("err = %v", err)
	}
	if bars, err := c.get(ctx, "x", load); err != nil || len(bars) != 5 {
		t.Fatalf("a failed decode must not be kept: %d bars, %v", len(bars), err)
	}
}

func TestBarsCacheSharesOneDecode(t *testing.T) {
	c := newBarsCache(4)
	started, release := make(chan struct{}), make(chan struct{})
	decodes := 0
	slow := func() ([]engine.Bar, error) {
		decodes++
		close(started)
		<-release
		return []engine.Bar{{}}, nil
	}
	first := make(chan error, 1)
	go func() { _, err := c.get(context.Background(), "h", slow); first <- err }()
	// A second request for the same hash waits for the first decode; a cancelled one
	// gives up.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	<-started
	if _, err := c.get(ctx, "h", slow); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	second := make(chan error, 1)
	go func() { _, err := c.get(context.Background(), "h", slow); second <- err }()
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if decodes != 1 {
		t.Fatalf("%d decodes for one hash", decodes)
	}
}

// fleet is a master and one worker serving the backtest handler.
func fleet(t *testing.T) *dispatch.Master {
	t.Helper()
	f := fleettest.New(t, map[string]worker.Handler{Type: NewHandler()},
		fleettest.WithMasterOptions(dispatch.WithRetryBackoff(time.Millisecond, 5*time.Millisecond)),
		fleettest.WithWorkerOptions(worker.WithConcurrency(2)))
	return f.Master()
}

func TestHandler(t *testing.T) {
	leakcheck.Check(t)
	m := fleet(t)
	ctx := context.Background()
	bars := engine.Synthetic(300, 5)
	hash, err := m.PutBlob(engine.EncodeBars(bars))
	if err != nil {
		t.Fatal(err)
	}
	p := engine.Params{Fast: 3, Slow: 30, Kind: engine.KindSMA, FeeBps: 4, SlippageBps: 2}

	for range 3 { // the decoded bars are cached; every run gives the same bits
		res, err := m.Call(ctx, Type, Payload{Data: hash, Params: p})
		if err != nil {
			t.Fatal(err)
		}
		var got engine.Result
		if err := json.Unmarshal(res, &got); err != nil {
			t.Fatal(err)
		}
		if want, _ := engine.Run(bars, p); !got.Equal(want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
	if m.BlobsServed() != 1 {
		t.Errorf("blob served %d times to one worker", m.BlobsServed())
	}

	notBars, err := m.PutBlob([]byte("not bars"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		payload   any
		code      string
		retryable bool
	}{
		{"not JSON", []byte("{"), CodeBadPayload, false},
		{"no data", Payload{Params: p}, CodeBadPayload, false},
		{"not bars", Payload{Data: notBars, Params: p}, CodeBadData, false},
		{"bad params", Payload{Data: hash, Params: engine.Params{Fast: 30, Slow: 3, Kind: "sma"}}, CodeBadParams, false},
		{"missing blob", Payload{Data: "sha256:0000", Params: p}, "", true},
	}
	for _, c := range cases {
		_, err := m.Call(ctx, Type, c.payload)
		var remote *dispatch.RemoteError
		if !errors.As(err, &remote) || remote.Code != c.code || remote.Retryable != c.retryable {
			t.Errorf("%s: %v (%+v), want code %q retryable %v", c.name, err, remote, c.code, c.retryable)
		}
	}
}
