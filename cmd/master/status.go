package main

import (
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"time"

	"github.com/banfleet/banfleet/dispatch"
)

// fleet is what the status server reads; *dispatch.Master implements it.
type fleet interface {
	Workers() []dispatch.WorkerInfo
	Stats() dispatch.Stats
	BlobsServed() uint64
}

// status is the /status document. Its shape is part of the operations contract
// (docs/operations.md): fields are never omitted, maps and lists are never null.
type status struct {
	Listen        string         `json:"listen"`         // the banio address
	StartedAt     time.Time      `json:"started_at"`     // RFC 3339
	UptimeSeconds float64        `json:"uptime_seconds"` // since the master started
	Workers       []workerStatus `json:"workers"`        // in registration order
	Capacity      int            `json:"capacity"`       // sum of the workers' capacities
	InFlight      int            `json:"inflight"`       // jobs running on workers
	Queued        int            `json:"queued"`         // jobs waiting for a worker
	QueuedByType  map[string]int `json:"queued_by_type"` // the same, per job type
	Done          uint64         `json:"done"`           // jobs resolved with a result
	Failed        uint64         `json:"failed"`         // jobs failed: a handler's error, a bad job
	TimedOut      uint64         `json:"timed_out"`      // jobs whose timeout or deadline passed
	Cancelled     uint64         `json:"cancelled"`      // jobs cancelled by their caller (or by the master's shutdown)
	Lost          uint64         `json:"lost"`           // jobs whose attempts ran out with their worker lost
	Retried       uint64         `json:"retried"`        // re-dispatches
	Throughput    float64        `json:"throughput"`     // jobs done per second, last 10 s
	BlobsServed   uint64         `json:"blobs_served"`   // blob downloads answered
}

// workerStatus is one worker in /status.
type workerStatus struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Capacity int               `json:"capacity"`
	InFlight int               `json:"inflight"`
	Labels   map[string]string `json:"labels"`
	Types    []string          `json:"types"`
	Remote   string            `json:"remote"`
	Draining bool              `json:"draining"`
}

// statusServer serves /, /status, /healthz and, given a handler, /metrics.
type statusServer struct {
	fleet   fleet
	listen  string
	now     func() time.Time
	started time.Time
	metrics http.Handler // the Prometheus exposition of the master's metrics; nil: no /metrics
}

func newStatusServer(f fleet, listen string, now func() time.Time) *statusServer {
	return &statusServer{fleet: f, listen: listen, now: now, started: now()}
}

// handler routes the status endpoints; anything else is 404.
func (s *statusServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /status", s.statusJSON)
	mux.HandleFunc("GET /{$}", s.page)
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics)
	}
	return mux
}

// healthz answers 200 "ok" while the process serves HTTP.
func (s *statusServer) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *statusServer) statusJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.snapshot())
}

//go:embed status.html.tmpl
var pageSource string

var pageTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"duration": func(secs float64) string {
		return time.Duration(secs * float64(time.Second)).Round(time.Second).String()
	},
}).Parse(pageSource))

func (s *statusServer) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := pageTemplate.Execute(w, s.snapshot()); err != nil {
		http.Error(w, "rendering the status page failed", http.StatusInternalServerError)
	}
}

// snapshot reads the fleet's state.
func (s *statusServer) snapshot() status {
	st := s.fleet.Stats()
	now := s.now()
	out := status{
		Listen:        s.listen,
		StartedAt:     s.started.UTC().Truncate(time.Second),
		UptimeSeconds: now.Sub(s.started).Seconds(),
		Workers:       []workerStatus{},
		Capacity:      st.Capacity,
		InFlight:      st.InFlight,
		Queued:        st.Queued,
		QueuedByType:  map[string]int{},
		Done:          st.Done,
		Failed:        st.Failed,
		TimedOut:      st.TimedOut,
		Cancelled:     st.Cancelled,
		Lost:          st.Lost,
		Retried:       st.Retried,
		Throughput:    st.Throughput,
		BlobsServed:   s.fleet.BlobsServed(),
	}
	for typ, n := range st.QueuedByType {
		out.QueuedByType[typ] = n
	}
	for _, w := range s.fleet.Workers() {
		ws := workerStatus{
			ID: w.ID, Name: w.Name, Capacity: w.Capacity, InFlight: w.InFlight,
			Labels: map[string]string{}, Types: append([]string{}, w.Types...),
			Remote: w.Remote, Draining: w.Draining,
		}
		for k, v := range w.Labels {
			ws.Labels[k] = v
		}
		sort.Strings(ws.Types)
		out.Workers = append(out.Workers, ws)
	}
	return out
}
