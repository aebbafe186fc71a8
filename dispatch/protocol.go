package dispatch

// The actions dispatch and worker exchange over banio (docs/protocol.md). Jobs and
// replies use the binary envelopes of internal/envelope; the small control messages
// are JSON.
const (
	// JobActionPrefix + type is the action of a job sent to a worker; workers subscribe
	// to it for each type they handle.
	JobActionPrefix = "job:"
	// ActionRegister (worker → master, JSON WorkerInfo) announces a worker.
	ActionRegister = "fleet.register"
	// ActionDrain (worker → master, no data): send me no more jobs.
	ActionDrain = "fleet.drain"
	// ActionCancel (master → worker, client → master; JSON CancelMsg) cancels a job.
	ActionCancel = "fleet.cancel"
	// ActionProgress (worker → master → client; JSON ProgressMsg) reports progress.
	ActionProgress = "fleet.progress"
	// ActionSubmit (client → master, binary Submit envelope) submits a job remotely.
	ActionSubmit = "fleet.submit"
)

// JobAction is the action that carries jobs of jobType.
func JobAction(jobType string) string { return JobActionPrefix + jobType }

// CancelMsg asks to cancel a job. Attempt 0 (from a client) means whatever attempt is
// running.
type CancelMsg struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt,omitempty"`
}

// ProgressMsg carries a progress report.
type ProgressMsg struct {
	ID       string `json:"id"`
	Attempt  int    `json:"attempt"`
	Done     int64  `json:"done"`
	Total    int64  `json:"total"`
	Message  string `json:"msg,omitempty"`
	WorkerID string `json:"worker,omitempty"`
}
