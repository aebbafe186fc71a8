package protocol

// The JSON control messages: a worker's announcement, cancellations, progress reports
// and a client's re-attachment.

// WorkerInfo is what a worker announces (ActionRegister) and what the master knows of
// it. A worker sends ID, Name, Capacity, Labels and Types; the master fills in Remote,
// InFlight and Draining when it reports its workers (dispatch.Master.Workers).
//
// Held lists the attempts the worker still holds when it registers again after losing
// its connection: jobs it kept running while the master was away, and replies it could
// not deliver (or sent just before the loss, which may not have arrived). The master
// re-adopts those it still waits for (a master that restarted holds them as orphaned
// attempts), and cancels the running ones it does not want. The worker sends the held
// replies right after the registration, on the same connection.
type WorkerInfo struct {
	ID       string            `json:"id"`
	Name     string            `json:"name,omitempty"`
	Capacity int               `json:"capacity"` // jobs it runs at once
	Labels   map[string]string `json:"labels,omitempty"`
	Types    []string          `json:"types"`              // job types it handles
	Remote   string            `json:"remote,omitempty"`   // its address, as the master sees it
	InFlight int               `json:"inflight"`           // jobs running on it now
	Draining bool              `json:"draining,omitempty"` // it takes no new jobs
	Held     []HeldAttempt     `json:"held,omitempty"`     // attempts held across a reconnect
	Version  string            `json:"version,omitempty"`  // the banfleet build it runs (BuildVersion); "" from older workers
}

// HeldAttempt is one attempt a re-registering worker holds: still running, or Done
// with its reply held for the master (sent on the attempt's wait key, AttemptKey(ID,
// Attempt), right after the registration).
type HeldAttempt struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
	Done    bool   `json:"done,omitempty"`
}

// MaxHeldAttempts bounds the attempts one registration may list. A worker holds no
// more (a reply beyond it is dropped, and the master runs that job again); a master
// ignores the claims past it.
const MaxHeldAttempts = 16384

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

// MaxAttachJobs bounds the jobs one AttachMsg may name; a client with more sends
// several. A master drops (and logs once per connection) a message that names more.
const MaxAttachJobs = 1000

// AttachMsg (ActionAttach) asks the master to send the outcome of jobs a client
// submitted before it lost its connection to their new reply keys. Reply is the wait
// key the master answers with an AttachReply.
type AttachMsg struct {
	Reply string      `json:"reply"`
	Jobs  []AttachJob `json:"jobs"`
}

// AttachJob names one job to re-attach to and the wait key its Reply envelope is to
// answer.
type AttachJob struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// AttachReply answers an AttachMsg. Unknown lists the ids the master does not hold
// (neither unresolved nor retained): the client submits those again. Every other id
// gets its Reply envelope on its key: at once when the master retained its outcome,
// when it ends otherwise.
type AttachReply struct {
	Unknown []string `json:"unknown,omitempty"`
}
