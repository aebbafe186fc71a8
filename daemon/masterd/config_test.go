package masterd

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/dispatch"
)

// env is a fake environment.
var env = daemon.MapEnv

func TestConfigDefaults(t *testing.T) {
	c, err := parse(nil, env(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:6789" || c.HTTP != "127.0.0.1:6790" || c.QueueLimit != dispatch.DefaultQueueLimit ||
		c.MaxAttempts != dispatch.DefaultMaxAttempts || c.JobTimeout != 0 || c.Conn.Token != "" ||
		c.Conn.Heartbeat != banio.DefaultHeartbeatInterval || c.Conn.HeartbeatTimeout != banio.DefaultHeartbeatTimeout ||
		c.Log.Level != slog.LevelInfo || c.Log.Format != "text" || c.Trace.Mode != "none" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigPrecedence(t *testing.T) {
	e := env(
		"BANFLEET_LISTEN", "0.0.0.0:7000", // overridden by the flag
		"BANFLEET_TOKEN", "from-env", // overridden by the flag
		"BANFLEET_HTTP", "", // set but empty: disables the status server
		"BANFLEET_MAX_ATTEMPTS", "7",
		"BANFLEET_JOB_TIMEOUT", "90s",
		"BANFLEET_HEARTBEAT_TIMEOUT", "45s",
		"BANFLEET_LOG_LEVEL", "debug",
		"BANFLEET_TRACE", "stdout",
	)
	c, err := parse([]string{"-listen", "127.0.0.1:0", "-token", "from-flag", "-queue-limit", "10"}, e, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen (flag over env)", c.Listen, "127.0.0.1:0"},
		{"token (flag over env)", c.Conn.Token, "from-flag"},
		{"queue limit (flag over default)", c.QueueLimit, 10},
		{"http (empty env)", c.HTTP, ""},
		{"max attempts (env)", c.MaxAttempts, 7},
		{"job timeout (env)", c.JobTimeout, 90 * time.Second},
		{"heartbeat timeout (env)", c.Conn.HeartbeatTimeout, 45 * time.Second},
		{"heartbeat (default)", c.Conn.Heartbeat, banio.DefaultHeartbeatInterval},
		{"log level (env)", c.Log.Level, slog.LevelDebug},
		{"trace (env)", c.Trace.Mode, "stdout"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		args    []string
		env     []string
		mention string
	}{
		{[]string{"-listen", ""}, nil, "-listen"},
		{[]string{"-queue-limit", "0"}, nil, "-queue-limit"},
		{[]string{"-max-attempts", "0"}, nil, "-max-attempts"},
		{[]string{"-job-timeout", "-1s"}, nil, "-job-timeout"},
		{[]string{"-trace", "jaeger"}, nil, "jaeger"},
		{[]string{"-log-level", "loud"}, nil, "loud"},
		{[]string{"stray"}, nil, "stray"},
		{nil, []string{"BANFLEET_MAX_ATTEMPTS", "many"}, "BANFLEET_MAX_ATTEMPTS"},
		{nil, []string{"BANFLEET_TRACE", "zipkin"}, "BANFLEET_TRACE"},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		_, err := parse(c.args, env(c.env...), &stderr)
		if err == nil || !strings.Contains(err.Error()+stderr.String(), c.mention) {
			t.Errorf("args %q env %q: err %v, want one that mentions %q", c.args, c.env, err, c.mention)
		}
	}
}

func TestUsageNamesEnvironment(t *testing.T) {
	var stderr bytes.Buffer
	if code := New("master").Run(t.Context(), []string{"-h"}, env(), &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	for _, want := range []string{"-listen", "BANFLEET_LISTEN", "BANFLEET_TLS_CERT", "BANFLEET_OTLP_ENDPOINT", `default "127.0.0.1:6790"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, &stderr)
		}
	}
}

// parse parses args the way a daemon with no flags of its own does.
func parse(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (Config, error) {
	return New("master").Parse(args, lookupEnv, stderr)
}

// The cluster flags: raft's timeouts default to raft's own, are read from flags and
// BANFLEET_* variables, and are refused below 10ms; -cluster needs -node-id and a
// store on disk.
func TestClusterFlags(t *testing.T) {
	c, err := parse([]string{"-cluster", "-node-id", "m1", "-raft-heartbeat", "300ms"}, env("BANFLEET_RAFT_ELECTION", "400ms"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cluster.Enabled || c.Cluster.NodeID != "m1" || c.Cluster.HeartbeatTimeout != 300*time.Millisecond || c.Cluster.ElectionTimeout != 400*time.Millisecond {
		t.Errorf("cluster flags: %+v", c.Cluster)
	}
	if c, err := parse(nil, env(), &bytes.Buffer{}); err != nil || c.Cluster.HeartbeatTimeout != time.Second || c.Cluster.ElectionTimeout != time.Second {
		t.Errorf("cluster defaults: %+v, %v", c.Cluster, err)
	}
	for _, tc := range []struct {
		args    []string
		mention string
	}{
		{[]string{"-cluster"}, "-node-id"},
		{[]string{"-cluster", "-node-id", "m1", "-in-memory"}, "-in-memory"},
		{[]string{"-cluster", "-node-id", "m1", "-raft-heartbeat", "1ms"}, "-raft-heartbeat"},
		{[]string{"-cluster", "-node-id", "m1", "-peers", "m1=a:1", "-join", "http://b:2"}, "-join"},
	} {
		if _, err := parse(tc.args, env(), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("args %q: err %v, want one that mentions %q", tc.args, err, tc.mention)
		}
	}
}
