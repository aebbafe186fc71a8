package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
)

// fakeFleet is a fleet with fixed contents.
type fakeFleet struct {
	workers []dispatch.WorkerInfo
	stats   dispatch.Stats
	blobs   uint64
}

func (f *fakeFleet) Workers() []dispatch.WorkerInfo { return f.workers }
func (f *fakeFleet) Stats() dispatch.Stats          { return f.stats }
func (f *fakeFleet) BlobsServed() uint64            { return f.blobs }

func newTestStatus(f fleet) (*httptest.Server, *time.Time) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newStatusServer(f, "127.0.0.1:6789", func() time.Time { return now })
	now = now.Add(90 * time.Second)
	return httptest.NewServer(s.handler()), &now
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestHealthz(t *testing.T) {
	srv, _ := newTestStatus(&fakeFleet{})
	defer srv.Close()
	resp, body := get(t, srv.URL+"/healthz")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %s %q", resp.Status, body)
	}
	if resp, _ := get(t, srv.URL+"/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nope: %s, want 404", resp.Status)
	}
	resp, err := http.Post(srv.URL+"/status", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %s, want 405", resp.Status)
	}
}

func testFleet() *fakeFleet {
	return &fakeFleet{
		workers: []dispatch.WorkerInfo{
			{ID: "w-1", Name: "alpha", Capacity: 4, InFlight: 3, Labels: map[string]string{"region": "eu"},
				Types: []string{"sleep", "backtest"}, Remote: "10.0.0.2:5000"},
			{ID: "w-2", Name: "<b>beta</b>", Capacity: 2, Types: []string{"echo"}, Draining: true},
		},
		stats: dispatch.Stats{Workers: 2, Capacity: 6, InFlight: 3, Queued: 7, QueuedByType: map[string]int{"backtest": 7},
			Done: 100, Failed: 2, TimedOut: 3, Cancelled: 4, Lost: 1, Retried: 5, Throughput: 12.5},
		blobs: 2,
	}
}

func TestStatusJSON(t *testing.T) {
	srv, _ := newTestStatus(testFleet())
	defer srv.Close()
	resp, body := get(t, srv.URL+"/status")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/status: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	// The shape: every documented field present, in JSON types a client can rely on.
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	wantTop := []string{"blobs_served", "cancelled", "capacity", "done", "failed", "inflight", "listen", "lost", "queued", "queued_by_type",
		"retried", "started_at", "throughput", "timed_out", "uptime_seconds", "workers"}
	if got := keys(doc); !reflect.DeepEqual(got, wantTop) {
		t.Fatalf("top-level fields %v, want %v", got, wantTop)
	}
	workers := doc["workers"].([]any)
	wantWorker := []string{"capacity", "draining", "id", "inflight", "labels", "name", "remote", "types"}
	for _, w := range workers {
		if got := keys(w.(map[string]any)); !reflect.DeepEqual(got, wantWorker) {
			t.Fatalf("worker fields %v, want %v", got, wantWorker)
		}
	}

	var st status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Listen != "127.0.0.1:6789" || st.UptimeSeconds != 90 || st.StartedAt.Format(time.RFC3339) != "2026-01-02T03:04:05Z" {
		t.Errorf("listen %q uptime %v started %v", st.Listen, st.UptimeSeconds, st.StartedAt)
	}
	if st.Capacity != 6 || st.InFlight != 3 || st.Queued != 7 || st.QueuedByType["backtest"] != 7 ||
		st.Done != 100 || st.Failed != 2 || st.TimedOut != 3 || st.Cancelled != 4 || st.Lost != 1 || st.Retried != 5 || st.Throughput != 12.5 || st.BlobsServed != 2 {
		t.Errorf("counters: %+v", st)
	}
	if len(st.Workers) != 2 {
		t.Fatalf("%d workers", len(st.Workers))
	}
	w1, w2 := st.Workers[0], st.Workers[1]
	if w1.ID != "w-1" || w1.Name != "alpha" || w1.Capacity != 4 || w1.InFlight != 3 || w1.Labels["region"] != "eu" ||
		!reflect.DeepEqual(w1.Types, []string{"backtest", "sleep"}) || w1.Remote != "10.0.0.2:5000" || w1.Draining {
		t.Errorf("worker 1: %+v", w1)
	}
	if !w2.Draining || w2.Labels == nil {
		t.Errorf("worker 2: %+v", w2)
	}
}

func TestStatusJSONEmptyFleet(t *testing.T) {
	srv, _ := newTestStatus(&fakeFleet{})
	defer srv.Close()
	_, body := get(t, srv.URL+"/status")
	if !strings.Contains(body, `"workers": []`) || !strings.Contains(body, `"queued_by_type": {}`) {
		t.Errorf("an empty fleet must give empty lists and maps, not null:\n%s", body)
	}
}

func TestStatusPage(t *testing.T) {
	srv, _ := newTestStatus(testFleet())
	defer srv.Close()
	resp, body := get(t, srv.URL+"/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`<meta http-equiv="refresh"`, "alpha", "w-1", "10.0.0.2:5000", "backtest, sleep", "region=eu", "draining",
		"&lt;b&gt;beta&lt;/b&gt;", // worker names are escaped
		"<b>100</b><span>done</span>", "<b>2</b><span>failed</span>", "<b>3</b><span>timed out</span>", "<b>4</b><span>cancelled</span>", "<b>1</b><span>lost</span>",
		"<td>backtest</td><td class=\"n\">7</td>", "up 1m30s",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, external := range []string{"src=", "<link", "http://", "https://"} {
		if strings.Contains(body, external) {
			t.Errorf("page refers to an external asset (%q)", external)
		}
	}

	empty, _ := newTestStatus(&fakeFleet{})
	defer empty.Close()
	if _, body := get(t, empty.URL+"/"); !strings.Contains(body, "No worker is connected") || !strings.Contains(body, "No job is waiting") {
		t.Errorf("empty fleet page:\n%s", body)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
