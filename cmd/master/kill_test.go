package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/internal/proctest"
	"github.com/cenkalti/backoff/v4"
)

// fastReconnect makes workers and the Client come back within milliseconds of the new
// master listening.
func fastReconnect() backoff.BackOff {
	return backoff.NewExponentialBackOff(backoff.WithInitialInterval(10*time.Millisecond),
		backoff.WithMaxInterval(100*time.Millisecond), backoff.WithMaxElapsedTime(0))
}

// TestKill9MasterLosesNothing runs 3,000 jobs through a real cmd/master process, kills
// it with SIGKILL while jobs are queued, running and resolving, and starts a new one on
// the same address and data dir. The workers (in this process) survive and keep their
// jobs; the Client rides through. Every ticket resolves once with its result, and no
// job runs twice: what was running is claimed by its worker, what was queued runs once
// on the new master, and what had resolved is collected from the store.
func TestKill9MasterLosesNothing(t *testing.T) {
	leakcheck.Check(t)
	const jobs = 3000
	bin := proctest.Build(t, t.TempDir(), raceEnabled, "github.com/banfleet/banfleet/cmd/master")[0]
	dir := t.TempDir()
	// A grace longer than the test: an orphan that runs again fails the test rather
	// than hiding in a slow rerun.
	args := []string{"-http", "", "-data-dir", dir, "-orphan-grace", "5m", "-log-level", "warn", "-heartbeat", "100ms", "-heartbeat-timeout", "1s"}
	master := proctest.Start(t, "master", bin, append([]string{"-listen", "127.0.0.1:0"}, args...)...)
	addr := master.AwaitLine(t, "banfleet master listening on ")

	// Every 97th job is held in its handler until the new master is up: whatever the
	// moment of the kill (with 2 ms jobs, every slot may be waiting for its attempt's
	// commit, none of them on a worker), those held by then are under way on a worker.
	load := startHeldDoublingLoad(t, addr, "k-", jobs, 97)
	load.awaitResolved(jobs/3, 30*time.Second, "the first master resolved too few jobs")
	held := int(load.held.Load()) // running now: they wait for releaseHeld
	master.Kill()
	// Logging at info: the restored and re-adopted counts are read from the log.
	master = proctest.Start(t, "master-2", bin, append(append([]string{"-listen", addr}, args...), "-log-level", "info")...)
	master.AwaitLine(t, "banfleet master listening on ")
	load.releaseHeld()

	load.checkEveryJobOnce(60 * time.Second)
	// The kill caught jobs running, and their workers claimed them. Not necessarily
	// all: an attempt recorded but whose envelope the dying master never wrote is not
	// on any worker, and runs (once) on the new master.
	log := master.Stderr.String()
	orphaned := sumLogged(log, "master restored from its store", "orphaned")
	adopted := sumLogged(log, "worker registered", "adopted")
	t.Logf("the restarted master found %d jobs running (orphaned); the workers claimed %d; %d were held on workers", orphaned, adopted, held)
	if held == 0 || orphaned < held || adopted < held {
		t.Fatalf("%d orphaned attempts, %d re-adopted, %d held on workers at the kill: want the held ones among both\n%s", orphaned, adopted, held, log)
	}
}

// sumLogged adds up the integer attribute key of the log lines whose message contains
// msg.
func sumLogged(log, msg, key string) int {
	re := regexp.MustCompile(`\b` + key + `=(\d+)`)
	total := 0
	for l := range strings.Lines(log) {
		if !strings.Contains(l, msg) {
			continue
		}
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
	}
	return total
}
