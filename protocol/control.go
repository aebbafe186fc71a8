package protocol

// The JSON control messages: a worker's announcement, cancellations and progress
// reports.

// WorkerInfo is what a worker announces (ActionRegister) and what the master knows of
// it. A worker sends ID, Name, Capacity, Labels and Types; the master fills in Remote,
// InFlight and Draining when it reports its workers (dispatch.Master.Workers).
type WorkerInfo struct {
	ID       string            `json:"id"`
	Name     string            `json:"name,omitempty"`
	Capacity int               `json:"capacity"` // jobs it runs at once
	Labels   map[string]string `json:"labels,omitempty"`
	Types    []string          `json:"types"`              // job types it handles
	Remote   string            `json:"remote,omitempty"`   // its address, as the master sees it
	InFlight int               `json:"inflight"`           // jobs running on it now
	Draining bool              `json:"draining,omitempty"` // it takes no new jobs
}

// CancelMsg (ActionCancel) asks to cancel a job. Attempt 0 (from a client) means
// whatever attempt is running.
type CancelMsg struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt,omitempty"`
}

// ProgressMsg (ActionProgress) carries a progress report.
type ProgressMsg struct {
	ID       string `json:"id"`
	Attempt  int    `json:"attempt"`
	Done     int64  `json:"done"`
	Total    int64  `json:"total"`
	Message  string `json:"msg,omitempty"`
	WorkerID string `json:"worker,omitempty"`
}
