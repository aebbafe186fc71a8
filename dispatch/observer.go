package dispatch

import (
	"sync"
	"sync/atomic"
)

// observer is who hears a job's progress and outcome: the Ticket of a caller in this
// process, or a remote caller's reply (remoteReply). A job has one observer, its
// submitter's (job.caller), and any number of followers: later submissions of its id
// and callers that re-attached to it.
type observer interface {
	// report delivers a progress report of job id; it never blocks.
	report(id string, p Progress)
	// resolveRaw settles the observer, once (it reports whether this call did). raw,
	// when not nil, is the worker's encoded reply that carries exactly this outcome: a
	// remote caller forwards it as it is, without encoding the reply again.
	resolveRaw(result []byte, err error, raw []byte) bool
}

// remoteReply is a remote caller's view of one job: its progress and outcome go over
// the caller's connection, the outcome under the caller's wait key. It is all the
// master keeps per remote job for its caller: no Ticket, no channel.
type remoteReply struct {
	// mu protects r and key: a caller that re-attaches after a reconnect takes the
	// job over (repoint) while progress may be on its way.
	mu       sync.Mutex
	r        *remoteCaller
	key      string
	resolved atomic.Bool
}

func newRemoteReply(r *remoteCaller, key string) *remoteReply {
	return &remoteReply{r: r, key: key}
}

// callRemote makes remote caller r, under wait key key, j's caller, through the
// remoteReply j carries.
func (j *job) callRemote(r *remoteCaller, key string) {
	j.reply = remoteReply{r: r, key: key}
	j.caller = &j.reply
}

// caller is the remote caller the job's outcome goes to; nil once repointed to none (a
// durable master's Close).
func (rr *remoteReply) caller() *remoteCaller {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.r
}

// target is the caller and wait key the outcome goes to.
func (rr *remoteReply) target() (*remoteCaller, string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.r, rr.key
}

// repoint sends the job's outcome and progress to another remote caller, under another
// key: the caller that re-attached after its connection was lost (nil: to nobody).
func (rr *remoteReply) repoint(r *remoteCaller, key string) {
	rr.mu.Lock()
	rr.r, rr.key = r, key
	rr.mu.Unlock()
}

func (rr *remoteReply) report(id string, p Progress) {
	if rr.resolved.Load() {
		return
	}
	if r, _ := rr.target(); r != nil {
		r.progress(id, p)
	}
}

func (rr *remoteReply) resolveRaw(result []byte, err error, raw []byte) bool {
	if rr.resolved.Swap(true) {
		return false
	}
	if r, key := rr.target(); r != nil {
		r.reply(key, result, err, raw)
	}
	return true
}

// remoteOf is the remote caller of observer o, or nil for an in-process Ticket.
func remoteOf(o observer) *remoteCaller {
	if rr, ok := o.(*remoteReply); ok {
		return rr.caller()
	}
	return nil
}

// repointTo repoints o if it is a remote caller's.
func repointTo(o observer, r *remoteCaller, key string) {
	if rr, ok := o.(*remoteReply); ok {
		rr.repoint(r, key)
	}
}
