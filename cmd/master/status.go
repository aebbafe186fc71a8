package main

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/protocol"
)

// fleet is what the status server reads; *dispatch.Master implements it.
type fleet interface {
	Snapshot() dispatch.Snapshot
	LookupJob(id string) (dispatch.JobView, bool)
}

// statusServer serves the status page, its JSON, a job lookup, /healthz and, when
// given, /metrics and pprof (docs/operations.md, "Status page and /status").
type statusServer struct {
	fleet   fleet
	listen  string
	now     func() time.Time
	started time.Time
	version string
	metrics http.Handler // the Prometheus exposition of the master's metrics; nil: no /metrics
	pprof   bool         // serve net/http/pprof under /debug/pprof/ (-pprof)
	// cluster, when set, reports the cluster's members and leader for the page's
	// cluster section and the "cluster" field of /status; nil: this master runs alone.
	// What it returns is rendered by the template "cluster" (status_cluster.html.tmpl)
	// and encoded as JSON as it is.
	cluster func() any
}

func newStatusServer(f fleet, listen string, now func() time.Time) *statusServer {
	return &statusServer{fleet: f, listen: listen, now: now, started: now(), version: protocol.BuildVersion()}
}

// handler routes the status endpoints; anything else is 404.
func (s *statusServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /status", s.statusJSON)
	mux.HandleFunc("GET /status.json", s.statusJSON)
	mux.HandleFunc("GET /status/job", s.jobPage)
	mux.HandleFunc("GET /status/job.json", s.jobJSON)
	mux.HandleFunc("GET /{$}", s.page)
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics)
	}
	if s.pprof {
		// Registered here rather than by the package's init on http.DefaultServeMux,
		// which this server does not use, so that profiles exist only with -pprof.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// healthz answers 200 "ok" while the process serves HTTP.
func (s *statusServer) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *statusServer) statusJSON(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.document())
}

func (s *statusServer) page(w http.ResponseWriter, r *http.Request) {
	doc := s.document()
	render(w, http.StatusOK, "status", newPageView(doc, refreshSeconds(r)))
}

// jobPage is the lookup form and, with ?id=, what the master knows of that job.
func (s *statusServer) jobPage(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	v := jobPageView{ID: id, Listen: s.listen, Version: s.version}
	code := http.StatusOK
	if id != "" {
		if len(id) > maxJobID {
			code, v.Problem = http.StatusBadRequest, "That id is longer than any job id the master accepts."
		} else if jv, ok := s.fleet.LookupJob(id); ok {
			js := newJobStatus(jv, s.now())
			v.Job = &js
		} else {
			code = http.StatusNotFound
		}
	}
	render(w, code, "job", v)
}

// jobJSON is the lookup as JSON: the job, or 404 with an error.
func (s *statusServer) jobJSON(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	switch {
	case id == "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give the job's id: /status/job.json?id=ID"})
	case len(id) > maxJobID:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "that id is longer than any job id the master accepts"})
	default:
		jv, ok := s.fleet.LookupJob(id)
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "the master knows no job " + strconv.Quote(id) +
				": never submitted, or resolved and forgotten (see -result-retention)"})
			return
		}
		writeJSON(w, http.StatusOK, newJobStatus(jv, s.now()))
	}
}

// maxJobID bounds the id a lookup accepts: ids are UUIDs or a caller's own, never
// kilobytes, and the page echoes it.
const maxJobID = 512

// refreshSeconds is the page's refresh period: ?refresh=N seconds (0 stops it), 2 by
// default, at most an hour.
func refreshSeconds(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("refresh"))
	if err != nil || n < 0 {
		return defaultRefresh
	}
	return min(n, 3600)
}

const defaultRefresh = 2

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
