package banio

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// tagsOf makes n distinct tags of size bytes, prefixed so that calls do not collide.
func tagsOf(prefix string, n, size int) []string {
	tags := make([]string, n)
	for i := range tags {
		head := fmt.Sprintf("%s%d-", prefix, i)
		tags[i] = head + strings.Repeat("t", size-len(head))
	}
	return tags
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// barrier returns once the server's handler goroutine has handled everything p sent
// before (a ping is answered on the read loop, ahead of it).
func barrier(p *rawPeer) {
	p.t.Helper()
	p.send("echo", []byte("barrier|"), true)
	p.expect(resPrefix + "barrier")
}

// keptTagBytes adds up the bytes of the tags that sc holds, from GetData.
func keptTagBytes(sc *BanConn, tags []string) (n, bytes int) {
	for _, tag := range tags {
		if _, ok := sc.GetData(tag); ok {
			n++
			bytes += len(tag)
		}
	}
	return n, bytes
}

// TestSubscriptionByteBudget (finding 3a): zlib-compressed subscribe frames of large
// tags from a banbot-like peer. What the connection keeps stays within its byte
// budget and its tag length limit, and the refusals are logged once, not per frame.
func TestSubscriptionByteBudget(t *testing.T) {
	leakcheck.Check(t)
	const budget, tagLen = 8 << 10, 512
	logOpt, logs := captureLogs()
	_, addr, conns := startServer(t, WithSubscriptionBudget(budget, tagLen), logOpt)
	p := dialRaw(t, addr, nil)
	sc := recv(t, conns, 5*time.Second, "server conn")

	long := tagsOf("long", 4, tagLen+1) // over the length limit
	var sent []string
	for i := range 8 { // 8 frames of 40 fitting tags each: 5 times the byte budget
		tags := tagsOf(fmt.Sprintf("f%d-", i), 40, 256)
		sent = append(sent, tags...)
		p.send(actionSubscribe, mustJSON(t, append(tags, long[i%len(long)])), false)
	}
	barrier(p)

	if n, _ := keptTagBytes(sc, long); n != 0 {
		t.Fatalf("%d tags longer than the %d-byte limit kept", n, tagLen)
	}
	n, kept := keptTagBytes(sc, sent)
	if kept > budget || kept < budget-256 {
		t.Fatalf("connection keeps %d tags of %d bytes in all, want the %d-byte budget filled and no more", n, kept, budget)
	}
	if st := sc.DataStats(); st.KeyBytes != kept || st.Keys != n {
		t.Fatalf("DataStats = %+v, want %d keys of %d bytes", st, n, kept)
	}
	if got := strings.Count(logs.String(), "subscriptions refused"); got != 1 {
		t.Fatalf("refusals logged %d times, want once (rate-limited):\n%s", got, logs)
	}

	// Unsubscribing gives the budget back.
	var held []string
	for _, tag := range sent {
		if _, ok := sc.GetData(tag); ok {
			held = append(held, tag)
		}
	}
	p.send(actionUnsubscribe, mustJSON(t, held), false)
	barrier(p)
	if st := sc.DataStats(); st.Keys != 0 || st.KeyBytes != 0 {
		t.Fatalf("after unsubscribing everything DataStats = %+v", st)
	}
}

// TestSubscribeRefusedUnparsed (finding 3a): a subscribe payload larger than what is
// left of the connection's budget, even with every tag new and escaped, is refused
// before it is parsed; one that fits still works.
func TestSubscribeRefusedUnparsed(t *testing.T) {
	leakcheck.Check(t)
	const budget = 4 << 10
	logOpt, logs := captureLogs()
	_, addr, conns := startServer(t, WithSubscriptionBudget(budget, 0), WithLimits(16, 0, 0, 0, 0), logOpt)
	p := dialRaw(t, addr, nil)
	sc := recv(t, conns, 5*time.Second, "server conn")

	huge := mustJSON(t, tagsOf("h", 16, 64<<10)) // 1 MiB: more than 6 × 4 KiB plus overhead
	p.send(actionSubscribe, huge, false)
	p.send(actionSubscribe, mustJSON(t, []string{"ok1", "ok2"}), false)
	barrier(p)
	if !logs.contains("subscribe refused unparsed") {
		t.Fatalf("oversized payload not refused unparsed:\n%s", logs)
	}
	if st := sc.DataStats(); st.Keys != 2 {
		t.Fatalf("DataStats = %+v, want the 2 small tags", st)
	}
}

// kvHeld adds up the keys and values the store holds, from the map itself.
func kvHeld(s *ServerIO) int {
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	n := 0
	for k, e := range s.kv.m {
		n += len(k) + len(e.val)
	}
	return n
}

// TestKVByteBudget (finding 3b): compressible onSetVal values of up to the value
// length limit, many times the store's byte budget in all. The store keeps no more
// than the budget (a lock counts too), refusals are logged once, and updates that
// shrink a value and deletes still work at the budget.
func TestKVByteBudget(t *testing.T) {
	leakcheck.Check(t)
	const budget, valLen = 256 << 10, 50 << 10
	logOpt, logs := captureLogs()
	srv, addr, _ := startServer(t, WithMaxKVBytes(budget), WithLimits(0, 0, 0, 0, valLen), logOpt)
	c := dialClient(t, addr)

	tok, err := c.Lock(t.Context(), "l", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if st := srv.KVStats(); st.Bytes != len(lockPrefix+"l")+len(tok) {
		t.Fatalf("KVStats with one lock = %+v", st)
	}
	val := strings.Repeat("v", valLen)
	const keys = 20 // 4 times the budget
	for i := range keys {
		if err := c.SetVal(&KeyValExpire{Key: fmt.Sprint("k", i), Val: val}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.GetVal("k0", 0); err != nil { // handled after every set
		t.Fatal(err)
	}
	st := srv.KVStats()
	if st.Bytes > budget || st.Bytes != kvHeld(srv) {
		t.Fatalf("store holds %d bytes (KVStats %+v), budget %d", kvHeld(srv), st, budget)
	}
	if want := 1 + budget/(valLen+2); st.Keys != want { // the lock and 5 values
		t.Fatalf("store holds %d keys, want %d", st.Keys, want)
	}
	if got := strings.Count(logs.String(), "onSetVal refused"); got != 1 {
		t.Fatalf("refusals logged %d times, want once (rate-limited):\n%s", got, logs)
	}

	_ = c.SetVal(&KeyValExpire{Key: "k0", Val: "small"}) // shrinking is fine at the budget
	_ = c.SetVal(&KeyValExpire{Key: "k1", Val: ""})
	if v, _ := c.GetVal("k0", 0); v != "small" {
		t.Fatalf("k0 = %.10q after shrinking it", v)
	}
	if got, want := srv.KVStats().Bytes, st.Bytes-2*valLen-2+len("small"); got != want || got != kvHeld(srv) {
		t.Fatalf("after shrinking and deleting the store holds %d bytes, want %d", got, want)
	}
	srv.SetVal(&KeyValExpire{Key: "k1", Val: val}) // room again
	if srv.GetVal("k1") != val {
		t.Fatal("a value that fits again was refused")
	}
}

// TestSetValRefusedUnparsed (finding 3b): an onSetVal larger than the key and value
// limits allow, even JSON-escaped, is refused before it is parsed.
func TestSetValRefusedUnparsed(t *testing.T) {
	leakcheck.Check(t)
	logOpt, logs := captureLogs()
	srv, addr, _ := startServer(t, WithLimits(0, 0, 0, 16, 1<<10), logOpt)
	p := dialRaw(t, addr, nil)
	big := mustJSON(t, KeyValExpire{Key: "k", Val: strings.Repeat("x", 64<<10)})
	p.send(actionSetVal, big, false)
	p.send(actionSetVal, mustJSON(t, KeyValExpire{Key: "k2", Val: `<&>` + strings.Repeat("\x01", 1000)}), false)
	barrier(p)
	if !logs.contains("onSetVal refused unparsed") {
		t.Fatalf("oversized onSetVal not refused unparsed:\n%s", logs)
	}
	if srv.GetVal("k") != "" || srv.GetVal("k2") == "" {
		t.Fatalf("k = %.10q, k2 = %.10q: want the oversized one refused, the escaped one that fits stored\n%s", srv.GetVal("k"), srv.GetVal("k2"), logs)
	}
}
