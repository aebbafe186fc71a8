package workerd

import (
	"bytes"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/worker"
)

// env is a fake environment.
var env = daemon.MapEnv

func TestConfigDefaults(t *testing.T) {
	c, err := parse(nil, env(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Master != "127.0.0.1:6789" || c.Concurrency != runtime.GOMAXPROCS(0) || c.DrainGrace != worker.DefaultDrainGrace ||
		len(c.Labels) != 0 || c.Name == "" || c.Conn.TLSEnabled(false) || c.Trace.Mode != "none" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigPrecedence(t *testing.T) {
	e := env(
		"BANFLEET_MASTER", "env-host:1",
		"BANFLEET_CONCURRENCY", "9",
		"BANFLEET_LABELS", "region=eu, gpu=a100",
		"BANFLEET_DRAIN_GRACE", "3s",
		"BANFLEET_TLS", "true",
		"BANFLEET_NAME", "from-env",
	)
	c, err := parse([]string{"-master", "flag-host:2", "-name", "from-flag"}, e, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Master != "flag-host:2" || c.Name != "from-flag" {
		t.Errorf("flags must win: master %q name %q", c.Master, c.Name)
	}
	if c.Concurrency != 9 || c.DrainGrace != 3*time.Second || !c.Conn.TLSEnabled(false) ||
		!reflect.DeepEqual(map[string]string(c.Labels), map[string]string{"region": "eu", "gpu": "a100"}) {
		t.Errorf("environment: %+v", c)
	}
}

func TestLabels(t *testing.T) {
	l := Labels{}
	if err := l.Set("b=2,a=1,,c="); err != nil {
		t.Fatal(err)
	}
	if l.String() != "a=1,b=2,c=" {
		t.Errorf("String = %q", l.String())
	}
	if err := l.Set("x=1"); err != nil || l.String() != "x=1" {
		t.Errorf("a second Set must replace: %q %v", l.String(), err)
	}
	for _, bad := range []string{"novalue", "=v", "a=1,b"} {
		if err := (Labels{}).Set(bad); err == nil {
			t.Errorf("%q must be refused", bad)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-master", ""}, {"-concurrency", "0"}, {"-drain-grace", "-1s"}, {"-blob-cache", "0"},
		{"-labels", "oops"}, {"-trace", "nope"}, {"-heartbeat", "0"}, {"more"},
	} {
		if _, err := parse(args, env(), &bytes.Buffer{}); err == nil {
			t.Errorf("%q must be refused", args)
		}
	}
	var stderr bytes.Buffer
	if code := New("worker").Run(t.Context(), []string{"-h"}, env(), io.Discard, &stderr); code != 0 || !strings.Contains(stderr.String(), "BANFLEET_DRAIN_GRACE") {
		t.Errorf("-h: exit %d\n%s", code, &stderr)
	}
}

// parse parses args the way a daemon with no flags of its own does.
func parse(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (Config, error) {
	return New("worker").Parse(args, lookupEnv, stderr)
}
