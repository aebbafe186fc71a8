package protocol

import "strconv"

// The banio actions of the job layer (docs/protocol.md §13). Jobs, replies and
// submissions are binary envelopes (envelope.go); the small control messages are JSON
// (control.go); the blob actions are in blob.go.
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
	// ActionAttach (client → master, JSON AttachMsg) re-attaches a reconnected client
	// to jobs it submitted earlier, by id; answered with JSON AttachReply on its Reply
	// key, and each job's outcome on that job's key.
	ActionAttach = "fleet.attach"
)

// JobAction is the action that carries jobs of jobType.
func JobAction(jobType string) string { return JobActionPrefix + jobType }

// AttemptKey is the wait key a master sends attempt n of job id under (Job.Key), and
// the key the worker's reply answers. It carries the attempt number, so that a reply
// from an older attempt (a worker that came back after its job was re-dispatched)
// finds no wait; and it is derived from the job alone, so that a restarted master
// waits on the same key for an attempt it re-adopts.
func AttemptKey(id string, n int) string { return id + "#" + strconv.Itoa(n) }
