package daemon

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func lookup(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"token": "BANFLEET_TOKEN", "heartbeat-timeout": "BANFLEET_HEARTBEAT_TIMEOUT", "tls-ca": "BANFLEET_TLS_CA"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func newSet() (*flag.FlagSet, *string, *int, *time.Duration, *bool) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, fs.String("addr", "default", ""), fs.Int("n", 1, ""), fs.Duration("wait-time", time.Second, ""), fs.Bool("on", false, "")
}

func TestParsePrecedence(t *testing.T) {
	fs, addr, n, wait, on := newSet()
	err := Parse(fs, []string{"-addr", "flag"}, lookup("BANFLEET_ADDR", "env", "BANFLEET_N", "5", "BANFLEET_ON", "true"))
	if err != nil {
		t.Fatal(err)
	}
	if *addr != "flag" || *n != 5 || *wait != time.Second || !*on {
		t.Errorf("addr %q n %d wait %s on %v; want flag > env > default", *addr, *n, *wait, *on)
	}

	fs, addr, _, _, _ = newSet()
	if err := Parse(fs, nil, lookup("BANFLEET_ADDR", "")); err != nil || *addr != "" {
		t.Errorf("an empty variable counts as set: %q %v", *addr, err)
	}
	fs, addr, _, _, _ = newSet()
	if err := Parse(fs, nil, nil); err != nil || *addr != "default" {
		t.Errorf("nil lookup: %q %v", *addr, err)
	}
}

func TestParseErrors(t *testing.T) {
	fs, _, _, _, _ := newSet()
	if err := Parse(fs, nil, lookup("BANFLEET_WAIT_TIME", "soon")); err == nil || !strings.Contains(err.Error(), "BANFLEET_WAIT_TIME") {
		t.Errorf("bad environment value: %v", err)
	}
	fs, _, _, _, _ = newSet()
	if err := Parse(fs, []string{"-n", "x"}, nil); err == nil {
		t.Error("bad flag value accepted")
	}
	fs, _, _, _, _ = newSet()
	if err := Parse(fs, []string{"leftover"}, nil); err == nil || !strings.Contains(err.Error(), "leftover") {
		t.Errorf("stray argument: %v", err)
	}
}

func TestUsageListsEnvironment(t *testing.T) {
	fs, _, _, _, _ := newSet()
	var out bytes.Buffer
	fs.SetOutput(&out)
	SetUsage(fs, "tool [flags]")
	if err := Parse(fs, []string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) { // prints the usage
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"usage: tool [flags]", "-wait-time duration", `(default "1s"; env BANFLEET_WAIT_TIME)`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, &out)
		}
	}
}

func TestDurationNeedsUnit(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"-wait-time", "10"}, nil, "a duration needs a unit: 10s"},
		{nil, []string{"BANFLEET_WAIT_TIME", "10"}, "a duration needs a unit: 10s"},
		{[]string{"-wait-time", "soon"}, nil, "such as 10s"},
	} {
		fs, _, _, _, _ := newSet()
		var out bytes.Buffer
		fs.SetOutput(&out)
		err := Parse(fs, c.args, MapEnv(c.env...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("args %q env %q: %v, want it to say %q", c.args, c.env, err, c.want)
		}
	}
	fs, _, _, d, _ := newSet()
	if err := Parse(fs, []string{"-wait-time", "250ms"}, nil); err != nil || *d != 250*time.Millisecond {
		t.Errorf("a good duration: %v, %v", *d, err)
	}
}
