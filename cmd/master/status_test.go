package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/cluster"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/store"
	"github.com/banfleet/banfleet/worker"
	"go.opentelemetry.io/otel/metric/noop"
)

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

// knownFleet is a real master with one worker (capacity 2) in this process, its status
// server on httptest, and what the known workload left: 3 jobs done, 1 failed, 1 timed
// out, 1 cancelled; then 2 running (the worker is full), 1 queued behind them and 2
// queued for a type nobody serves; two blobs stored.
type knownFleet struct {
	master   *dispatch.Master
	workerID string
	url      string
	blobs    []string
	status   *statusServer
}

func newKnownFleet(t *testing.T, durable bool) *knownFleet {
	t.Helper()
	srv := banio.NewBanServer("", "test-master")
	opts := []dispatch.Option{dispatch.WithMeterProvider(noop.NewMeterProvider())}
	var master *dispatch.Master
	if durable {
		st, err := store.OpenBolt(filepath.Join(t.TempDir(), "master.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() }) // after the master's Close, registered below
		if master, err = dispatch.OpenMaster(srv, st, opts...); err != nil {
			t.Fatal(err)
		}
	} else {
		master = dispatch.NewMaster(srv, opts...)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = master.Close(); _ = srv.Close(); <-served })

	started := make(chan struct{}, 8)
	w := worker.New(ln.Addr().String(), worker.WithConcurrency(2), worker.WithName("<b>w1</b>"),
		worker.WithLabels(map[string]string{"region": "eu"}), worker.WithMeterProvider(noop.NewMeterProvider()))
	w.Handle("ok", func(_ context.Context, j *worker.Job) (any, error) { return j.Payload, nil })
	w.Handle("fail", func(context.Context, *worker.Job) (any, error) { return nil, errors.New("no such bar file") })
	w.Handle("wait", func(ctx context.Context, _ *worker.Job) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan struct{})
	go func() { defer close(wdone); _ = w.Run(wctx) }()
	t.Cleanup(func() { wcancel(); <-wdone })
	ctx, cancelAll := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancelAll) // ends the jobs left running and queued, before the worker stops
	if err := master.WaitWorkers(ctx, 1); err != nil {
		t.Fatal(err)
	}

	for i := range 3 {
		if _, err := master.Call(ctx, "ok", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(id, typ string, timeout time.Duration) error {
		tk, err := master.Submit(ctx, dispatch.Job{ID: id, Type: typ, Timeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tk.Wait(ctx)
		return err
	}
	if err := wait("job-fail", "fail", 0); err == nil {
		t.Fatal("the failing job did not fail")
	}
	if err := wait("job-timeout", "wait", 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out job: %v", err)
	}
	<-started
	cctx, cancel := context.WithCancel(ctx)
	tk, err := master.Submit(cctx, dispatch.Job{ID: "job-cancel", Type: "wait"})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	if _, err := tk.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled job: %v", err)
	}
	for _, id := range []string{"job-run-1", "job-run-2"} {
		if _, err := master.Submit(ctx, dispatch.Job{ID: id, Type: "wait"}); err != nil {
			t.Fatal(err)
		}
		<-started
	}
	for _, j := range []dispatch.Job{{ID: "job-queued", Type: "wait"}, {Type: "unserved"}, {Type: "unserved"}} {
		if _, err := master.Submit(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	f := &knownFleet{master: master, workerID: w.ID()}
	for _, b := range []string{"bars 2024", strings.Repeat("x", 5000)} {
		h, err := master.PutBlob([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		f.blobs = append(f.blobs, h)
	}
	// The history is sampled by the master's timer once a second, which signals
	// nothing: a bounded poll for the sample that holds the workload.
	deadline := time.Now().Add(5 * time.Second)
	for okSum(master.Snapshot().History) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no history sample holds the 3 jobs done after 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.status = newStatusServer(master, "127.0.0.1:6789", time.Now)
	hs := httptest.NewServer(f.status.handler())
	t.Cleanup(hs.Close)
	f.url = hs.URL
	return f
}

func okSum(h dispatch.History) (n uint64) {
	for _, p := range h.Points {
		n += p.OK
	}
	return n
}

// section returns the HTML of the element with id, up to the end of the first
// </section> after it (the page's sections nest one level at most, in "recent").
func section(t *testing.T, page, id string) string {
	t.Helper()
	start := strings.Index(page, `id="`+id+`"`)
	if start < 0 {
		t.Fatalf("page has no element with id %q", id)
	}
	end := strings.Index(page[start:], "</section>")
	if end < 0 {
		end = len(page) - start
	}
	return page[start : start+end]
}

func TestStatusPage(t *testing.T) {
	leakcheck.Check(t)
	f := newKnownFleet(t, false)
	resp, page := get(t, f.url+"/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`<noscript><meta http-equiv="refresh" content="2"></noscript>`, `<meta name="viewport"`, `<body data-refresh="2">`,
		`<form id="lookup" action="/status/job"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	summary := section(t, page, "summary")
	for stat, n := range map[string]int{"done": 3, "failed": 1, "timed_out": 1, "cancelled": 1, "lost": 0, "queued": 3, "workers": 1} {
		if want := fmt.Sprintf(`data-stat="%s"><b>%d</b>`, stat, n); !strings.Contains(summary, want) {
			t.Errorf("summary lacks %s", want)
		}
	}
	if !strings.Contains(summary, `data-stat="running"><b>2 / 2</b>`) {
		t.Errorf("summary lacks 2 of 2 running:\n%s", summary)
	}

	graph := section(t, page, "throughput")
	if m := regexp.MustCompile(`<svg [^>]*data-points="(\d+)"`).FindStringSubmatch(graph); m == nil || m[1] == "0" {
		t.Errorf("throughput section has no SVG with points:\n%s", graph)
	}
	if !regexp.MustCompile(`<polyline class="ok"[^>]* points="[0-9., ]+"`).MatchString(graph) {
		t.Errorf("throughput SVG has no done line:\n%s", graph)
	}

	queues := section(t, page, "queues")
	for _, want := range []string{`<tr data-type="unserved" data-queued="2">`, `<tr data-type="wait" data-queued="1">`, `<tr data-type="ok" data-queued="0">`} {
		if !strings.Contains(queues, want) {
			t.Errorf("queues lack %s:\n%s", want, queues)
		}
	}
	if i, j := strings.Index(queues, `data-type="unserved"`), strings.Index(queues, `data-type="wait"`); i > j {
		t.Error("the most queued type is not listed first")
	}

	workers := section(t, page, "workers")
	row := regexp.MustCompile(`(?s)<tr data-worker="` + regexp.QuoteMeta(f.workerID) + `" data-state="busy">(.*?)</tr>`).FindStringSubmatch(workers)
	if row == nil {
		t.Fatalf("no busy row for the worker at 2/2:\n%s", workers)
	}
	for _, want := range []string{"&lt;b&gt;w1&lt;/b&gt;", `<td class="n">2 / 2</td>`, `<td class="n">3</td><td class="n">1</td><td class="n">1</td><td class="n">1</td><td class="n">0</td>`, "region=eu", "fail, ok, wait", " ago</td>"} {
		if !strings.Contains(row[1], want) {
			t.Errorf("worker row lacks %q:\n%s", want, row[1])
		}
	}

	for id, want := range map[string]string{"failed": "job-fail", "timed-out": "job-timeout", "cancelled": "job-cancel"} {
		sec := section(t, page, id)
		if !strings.Contains(sec, `data-count="1"`) || !strings.Contains(sec, `<tr data-job="`+want+`">`) ||
			!strings.Contains(sec, `href="/status/job?id=`+want+`"`) || !strings.Contains(sec, f.workerID) {
			t.Errorf("section %s does not list %s with its worker:\n%s", id, want, sec)
		}
	}
	if sec := section(t, page, "failed"); !strings.Contains(sec, `<td class="err">`) || !strings.Contains(sec, "no such bar file") {
		t.Errorf("the failed job's error is not shown:\n%s", sec)
	}
	if sec := section(t, page, "lost"); !strings.Contains(sec, `data-count="0"`) || !strings.Contains(sec, "No job was lost") {
		t.Errorf("lost section:\n%s", sec)
	}

	blobs := section(t, page, "blobs")
	if !strings.Contains(blobs, `data-blobs="2"`) || !strings.Contains(blobs, `data-blob="`+f.blobs[0]+`"`) || !strings.Contains(blobs, `data-blob="`+f.blobs[1]+`"`) {
		t.Errorf("blobs section:\n%s", blobs)
	}
	if i, j := strings.Index(blobs, f.blobs[1]), strings.Index(blobs, f.blobs[0]); i > j {
		t.Error("the largest blob is not listed first")
	}
	if !strings.Contains(section(t, page, "store"), `data-store="none"`) {
		t.Error("an in-memory master's store section does not say so")
	}
	if !strings.Contains(section(t, page, "cluster"), `data-cluster="none"`) {
		t.Error("the cluster section of a master that runs alone does not say so")
	}
	for _, external := range []string{"src=", "<link", "http://", "https://"} {
		if strings.Contains(page, external) {
			t.Errorf("page refers to an external asset (%q)", external)
		}
	}

	// ?refresh=0 stops refreshing, with and without scripts.
	if _, still := get(t, f.url+"/?refresh=0"); strings.Contains(still, `http-equiv="refresh"`) || strings.Contains(still, "<script>") {
		t.Error("?refresh=0 still refreshes")
	}
}

func TestStatusPageDurableAndCluster(t *testing.T) {
	leakcheck.Check(t)
	f := newKnownFleet(t, true)
	f.status.cluster = func() any {
		return &cluster.Status{ID: "node-b", State: "Follower", Leader: "node-a", LeaderAddr: "10.0.0.1:6789", Term: 7, CommitIndex: 42, Applied: 41, LastIndex: 42,
			Members: []cluster.Member{{ID: "node-a", RaftAddr: "10.0.0.1:6791", BanioAddr: "10.0.0.1:6789", Voter: true, Leader: true}, {ID: "node-b", RaftAddr: "10.0.0.2:6791", Voter: true}}}
	}
	_, page := get(t, f.url+"/")
	st := section(t, page, "store")
	if m := regexp.MustCompile(`data-field="commits">(\d+) `).FindStringSubmatch(st); m == nil || m[1] == "0" {
		t.Errorf("store section shows no commits:\n%s", st)
	}
	if !strings.Contains(st, `data-field="jobs">`) {
		t.Errorf("store section shows no jobs held:\n%s", st)
	}
	c := section(t, page, "cluster")
	for _, want := range []string{`data-field="leader">node-a at 10.0.0.1:6789`, `data-field="term">7`, `committed 42, applied 41`, `data-members="2"`, `data-member="node-a"`, `<td>leader</td>`, `<td>voter</td>`} {
		if !strings.Contains(c, want) {
			t.Errorf("cluster section lacks %s:\n%s", want, c)
		}
	}
	var doc status
	_, body := get(t, f.url+"/status")
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Store == nil || doc.Store.Commits == 0 || doc.Store.Jobs < 5 || doc.Store.Fsyncs == 0 || doc.Store.FileBytes == 0 {
		t.Errorf("store: %+v", doc.Store)
	}
	if c, ok := doc.Cluster.(map[string]any); !ok || c["leader"] != "node-a" || c["term"] != float64(7) {
		t.Errorf("cluster: %#v", doc.Cluster)
	}
}

func TestStatusJSON(t *testing.T) {
	leakcheck.Check(t)
	f := newKnownFleet(t, false)
	for _, path := range []string{"/status", "/status.json"} {
		resp, body := get(t, f.url+path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatal(err)
		}
		// The fields /status had before the page grew are all still there.
		for _, k := range []string{"blobs_served", "cancelled", "capacity", "done", "failed", "inflight", "listen", "lost", "queued",
			"queued_by_type", "retried", "started_at", "throughput", "timed_out", "uptime_seconds", "workers"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("%s lacks %q", path, k)
			}
		}
		for _, k := range []string{"capacity", "draining", "id", "inflight", "labels", "name", "remote", "types"} {
			if _, ok := raw["workers"].([]any)[0].(map[string]any)[k]; !ok {
				t.Errorf("%s worker lacks %q", path, k)
			}
		}
		if raw["store"] != nil || raw["cluster"] != nil {
			t.Errorf("store %v, cluster %v: want null for an in-memory master alone", raw["store"], raw["cluster"])
		}
	}

	var doc status
	_, body := get(t, f.url+"/status")
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Done != 3 || doc.Failed != 1 || doc.TimedOut != 1 || doc.Cancelled != 1 || doc.Lost != 0 || doc.Queued != 3 ||
		doc.QueuedByType["unserved"] != 2 || doc.InFlight != 2 || doc.Capacity != 2 || doc.BlobsServed != 0 || doc.Pprof || doc.Version == "" {
		t.Errorf("counters: %+v", doc)
	}
	if len(doc.Workers) != 1 {
		t.Fatalf("%d workers", len(doc.Workers))
	}
	w := doc.Workers[0]
	if w.ID != f.workerID || w.Name != "<b>w1</b>" || w.State != "busy" || w.Done != 3 || w.Failed != 1 || w.TimedOut != 1 ||
		w.Cancelled != 1 || w.Lost != 0 || w.Version == "" || w.Labels["region"] != "eu" || w.ConnectedAt.IsZero() ||
		w.LastHeardAt.Before(w.ConnectedAt) || w.LastHeardSeconds < 0 || w.LastHeardSeconds > 10 {
		t.Errorf("worker: %+v", w)
	}
	if len(doc.Types) < 4 || doc.Types[0].Type != "unserved" || doc.Types[0].Queued != 2 || doc.Types[0].OldestAgeSeconds <= 0 ||
		doc.Types[0].Workers != 0 || doc.Types[1].Type != "wait" || doc.Types[1].Workers != 1 || doc.Types[1].FreeSlots != 0 {
		t.Errorf("types: %+v", doc.Types)
	}
	var ok uint64
	for _, p := range doc.History.Points {
		ok += p.OK
		if p.Seconds <= 0 || p.End.IsZero() {
			t.Errorf("history point %+v", p)
		}
	}
	if ok != 3 || doc.History.IntervalSeconds != 1 || doc.History.PeakRate <= 0 {
		t.Errorf("history: %d ok in %d points, interval %v, peak %v", ok, len(doc.History.Points), doc.History.IntervalSeconds, doc.History.PeakRate)
	}
	r := doc.Recent
	if len(r.Failed) != 1 || len(r.TimedOut) != 1 || len(r.Cancelled) != 1 || len(r.Lost) != 0 {
		t.Fatalf("recent: %+v", r)
	}
	if j := r.Failed[0]; j.ID != "job-fail" || j.Type != "fail" || j.Outcome != "error" || j.Worker != f.workerID || j.Attempts != 1 ||
		!strings.Contains(j.Error, "no such bar file") || j.SubmittedAt == nil || j.StartedAt == nil || j.ResolvedAt == nil {
		t.Errorf("failed job: %+v", j)
	}
	if r.TimedOut[0].ID != "job-timeout" || r.TimedOut[0].Outcome != "timeout" || r.Cancelled[0].ID != "job-cancel" || r.Cancelled[0].Outcome != "cancelled" {
		t.Errorf("timed out %+v, cancelled %+v", r.TimedOut[0], r.Cancelled[0])
	}
	if b := doc.Blobs; b.Count != 2 || b.Bytes != 5009 || len(b.Largest) != 2 || b.Largest[0].Hash != f.blobs[1] || b.Largest[0].Bytes != 5000 {
		t.Errorf("blobs: %+v", b)
	}
}

// emptyStatusServer serves the status page of an in-memory master with no workers
// and no jobs, until the test ends.
func emptyStatusServer(t *testing.T) *httptest.Server {
	t.Helper()
	m := dispatch.NewMaster(banio.NewBanServer("", "test-master"), dispatch.WithMeterProvider(noop.NewMeterProvider()))
	hs := httptest.NewServer(newStatusServer(m, "x", time.Now).handler())
	t.Cleanup(func() {
		hs.Close()
		_ = m.Close()
	})
	return hs
}

func TestStatusJSONEmptyFleet(t *testing.T) {
	leakcheck.Check(t)
	hs := emptyStatusServer(t)
	_, body := get(t, hs.URL+"/status")
	for _, want := range []string{`"workers": []`, `"queued_by_type": {}`, `"types": []`, `"points": []`, `"failed": []`, `"largest": []`, `"store": null`, `"cluster": null`} {
		if !strings.Contains(body, want) {
			t.Errorf("an empty fleet must give empty lists and maps, not null: lacks %s\n%s", want, body)
		}
	}
	_, page := get(t, hs.URL+"/")
	for _, want := range []string{"No worker is connected", "No job is waiting", "No sample yet", "No job has failed"} {
		if !strings.Contains(page, want) {
			t.Errorf("empty fleet page lacks %q", want)
		}
	}
}

func TestStatusJobLookup(t *testing.T) {
	leakcheck.Check(t)
	f := newKnownFleet(t, false)
	lookup := func(id string) (int, jobStatus, string) {
		resp, body := get(t, f.url+"/status/job.json?id="+id)
		var js jobStatus
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &js); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, js, body
	}
	if code, js, _ := lookup("job-fail"); code != 200 || js.Phase != "resolved" || js.Outcome != "error" || js.Worker != f.workerID ||
		js.Attempts != 1 || !strings.Contains(js.Error, "no such bar file") || js.Source != "recent" || js.RunSeconds <= 0 {
		t.Errorf("failed job: %d %+v", code, js)
	}
	if code, js, _ := lookup("job-run-1"); code != 200 || js.Phase != "running" || js.Worker != f.workerID || js.Attempts != 1 || js.ResolvedAt != nil || js.Source != "live" {
		t.Errorf("running job: %d %+v", code, js)
	}
	if code, js, _ := lookup("job-queued"); code != 200 || js.Phase != "queued" || js.Worker != "" || js.StartedAt != nil {
		t.Errorf("queued job: %d %+v", code, js)
	}
	if code, _, body := lookup("never-submitted"); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown job: %d %s", code, body)
	}
	if code, _, _ := lookup(""); code != http.StatusBadRequest {
		t.Errorf("no id: %d, want 400", code)
	}

	resp, page := get(t, f.url+"/status/job?id=job-fail")
	if resp.StatusCode != 200 || !strings.Contains(page, `<section id="job" data-job="job-fail" data-phase="resolved" data-outcome="error">`) ||
		!strings.Contains(page, `<td data-field="worker">`+f.workerID+`</td>`) || !strings.Contains(page, "no such bar file") {
		t.Errorf("job page: %s\n%s", resp.Status, page)
	}
	resp, page = get(t, f.url+"/status/job?id=%3Cscript%3E")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(page, `id="job-not-found"`) || strings.Contains(page, "<b><script>") ||
		!strings.Contains(page, "&lt;script&gt;") {
		t.Errorf("unknown job page: %s\n%s", resp.Status, page)
	}
	if resp, page := get(t, f.url+"/status/job"); resp.StatusCode != 200 || !strings.Contains(page, `<form id="lookup"`) {
		t.Errorf("lookup form: %s", resp.Status)
	}
}

// TestPprofFlag: the profiles are served only with -pprof, on the status listener.
func TestPprofFlag(t *testing.T) {
	leakcheck.Check(t)
	_, url, _, _ := startRun(t, true, "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0", "-in-memory", "-log-level", "error")
	if resp, _ := get(t, url+"debug/pprof/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("pprof without -pprof: %s, want 404", resp.Status)
	}
	_, url, _, _ = startRun(t, true, "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0", "-in-memory", "-log-level", "error", "-pprof")
	if resp, body := get(t, url+"debug/pprof/goroutine?debug=1"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("pprof with -pprof: %s\n%.200s", resp.Status, body)
	}
	if _, body := get(t, url+"status"); !strings.Contains(body, `"pprof": true`) {
		t.Error("/status does not say pprof is on")
	}
}

func TestHealthz(t *testing.T) {
	leakcheck.Check(t)
	hs := emptyStatusServer(t)
	resp, body := get(t, hs.URL+"/healthz")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %s %q", resp.Status, body)
	}
	if resp, _ := get(t, hs.URL+"/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nope: %s, want 404", resp.Status)
	}
	resp, err := http.Post(hs.URL+"/status", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %s, want 405", resp.Status)
	}
}

func TestFormatters(t *testing.T) {
	for secs, want := range map[float64]string{0: "0s", 0.35: "350ms", 4.23: "4.2s", 200: "3m20s", 5*3600 + 125: "5h2m"} {
		if got := formatSeconds(secs); got != want {
			t.Errorf("formatSeconds(%v) = %q, want %q", secs, got, want)
		}
	}
	for n, want := range map[int64]string{12: "12 B", 5000: "4.9 KiB", 3 << 30: "3.0 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for v, want := range map[float64]float64{0: 1, 3: 5, 12: 20, 263.8: 500, 5276: 10000} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}
